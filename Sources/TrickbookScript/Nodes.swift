import Foundation

// The executable tree. The compiler resolves every name to a slot before anything runs, so a
// variable access is an array index, never a lookup by string.

class Node {
    let file: SourceFile
    let pos: SourcePos
    unowned(unsafe) let ctx: Interpreter
    /// The interpreter's per-step state (globals, interrupt flag), reached without refcounting.
    let state: UnsafeMutablePointer<RuntimeState>

    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos) {
        self.ctx = ctx
        self.state = ctx.state
        self.file = file
        self.pos = pos
    }

    /// A runtime error at this node.
    final func fail(_ message: String) -> ScriptError { ScriptError(message, file: file, pos: pos) }

    /// Gives a located error to one thrown without a location (by a builtin, a host binding, or
    /// any Swift error).
    final func locate(_ error: Error) -> Error {
        if error is ScriptInterrupted || error is StepLimitExceeded { return error }
        // A host operation that stopped for Ctrl-C is an interrupt, which scripts cannot catch.
        if state.pointee.interrupted { return ScriptInterrupted(file: file, pos: pos) }
        if var e = error as? ScriptError {
            if e.pos == nil { e.file = file; e.pos = pos }
            return e
        }
        return fail("\(error)")
    }
}

class Expr: Node {
    func eval(_ f: Frame) throws -> Value { .nil_ }
    /// The value's truth, for conditions: comparisons answer without building a Value.
    func evalBool(_ f: Frame) throws -> Bool {
        let v = try eval(f)
        do { return try v.truth() } catch { throw locate(error) }
    }
}

class Stmt: Node {
    func exec(_ f: Frame) throws -> Flow { .normal }
}

// MARK: - Literals and variables

final class ConstExpr: Expr {
    let value: Value
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ value: Value) { self.value = value; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value { value }
}

final class LocalGet: Expr {
    let slot: Int
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, slot: Int) { self.slot = slot; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value { f.slots[slot] }
}

final class UpvalueGet: Expr {
    let depth: Int, slot: Int
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, depth: Int, slot: Int) { self.depth = depth; self.slot = slot; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value { f.ancestor(depth).slots[slot] }
}

final class GlobalGet: Expr {
    let index: Int
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, index: Int) { self.index = index; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        guard state.pointee.defined[index] else {
            let name = ctx.globalNames[index]
            throw fail("unknown name '\(name)'\(didYouMean(name, ctx.definedGlobalNames))")
        }
        return state.pointee.globals[index]
    }
}

/// Where an assignment stores: a local slot, an enclosing function's slot, or a global.
enum Target {
    case local(Int)
    case upvalue(Int, Int)
    case global(Int)
}

extension Node {
    @inline(__always) func store(_ t: Target, _ v: Value, _ f: Frame) {
        switch t {
        case .local(let s): f.slots[s] = v
        case .upvalue(let d, let s): f.ancestor(d).slots[s] = v
        case .global(let i): ctx.storeGlobal(i, v)
        }
    }

    /// The storage of a defined variable.
    @inline(__always) func slot(_ t: Target, _ f: Frame) throws -> UnsafeMutablePointer<Value> {
        switch t {
        case .local(let s): return f.slots + s
        case .upvalue(let d, let s): return f.ancestor(d).slots + s
        case .global(let i):
            guard state.pointee.defined[i] else {
                let name = ctx.globalNames[i]
                throw fail("unknown name '\(name)'\(didYouMean(name, ctx.definedGlobalNames))")
            }
            return state.pointee.globals + i
        }
    }

    @inline(__always) func load(_ t: Target, _ f: Frame) throws -> Value {
        switch t {
        case .local(let s): return f.slots[s]
        case .upvalue(let d, let s): return f.ancestor(d).slots[s]
        case .global(let i):
            guard state.pointee.defined[i] else {
                let name = ctx.globalNames[i]
                throw fail("unknown name '\(name)'\(didYouMean(name, ctx.definedGlobalNames))")
            }
            return state.pointee.globals[i]
        }
    }
}

// MARK: - Operators

enum BinOp: String {
    case add = "+", sub = "-", mul = "*", div = "/", floorDiv = "//", mod = "%", pow = "**", matmul = "@"
    case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">="
    case inOp = "in", notIn = "not in"
}

final class BinaryExpr: Expr {
    let op: BinOp
    let lhs: Expr, rhs: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ op: BinOp, _ lhs: Expr, _ rhs: Expr) {
        self.op = op; self.lhs = lhs; self.rhs = rhs
        super.init(ctx, file, pos)
    }
    override func eval(_ f: Frame) throws -> Value {
        let a = try lhs.eval(f), b = try rhs.eval(f)
        if let v = quickBinary(op, a, b) { return v }
        do { return try binary(op, a, b) } catch { throw locate(error) }
    }

    override func evalBool(_ f: Frame) throws -> Bool {
        let a = try lhs.eval(f), b = try rhs.eval(f)
        if let holds = quickCompare(op, a, b) { return holds }
        do { return try binary(op, a, b).truth() } catch { throw locate(error) }
    }
}

/// A comparison of two ints or two floats as a Bool, without making a Value (nil: anything
/// else, for `binary` and `truth`).
@inline(__always)
func quickCompare(_ op: BinOp, _ a: Value, _ b: Value) -> Bool? {
    if case .int(let x) = a, case .int(let y) = b { return compare(op, x, y) }
    if case .float(let x) = a, case .float(let y) = b { return compare(op, x, y) }
    return nil
}

/// Comparison `op` of two numbers of one kind (nil: `op` is not a comparison). `BinOp.compare`
/// is the same by an operator's index, for the VM.
@inline(__always)
func compare<T: Comparable>(_ op: BinOp, _ x: T, _ y: T) -> Bool? {
    switch op {
    case .lt: return x < y
    case .gt: return x > y
    case .le: return x <= y
    case .ge: return x >= y
    case .eq: return x == y
    case .ne: return x != y
    default: return nil
    }
}

/// The common numeric cases of `binary`, without a call (nil: take the general rules).
@inline(__always)
func quickBinary(_ op: BinOp, _ a: Value, _ b: Value) -> Value? {
    if case .int(let x) = a, case .int(let y) = b {
        switch op {
        case .add: let (r, o) = x.addingReportingOverflow(y); return o ? nil : .int(r)
        case .sub: let (r, o) = x.subtractingReportingOverflow(y); return o ? nil : .int(r)
        default: return compare(op, x, y).map(Value.bool)
        }
    } else if case .float(let x) = a, case .float(let y) = b {
        switch op {
        case .add: return .float(x + y)
        case .sub: return .float(x - y)
        case .mul: return .float(x * y)
        case .div: return .float(x / y)
        default: return compare(op, x, y).map(Value.bool)
        }
    }
    return nil
}

/// `x op= rhs` on the value at `p`, in place: numbers without a call into the general rules.
@inline(__always)
func updateInPlace(_ p: UnsafeMutablePointer<Value>, _ op: BinOp, _ rhs: Value) throws {
    if op == .add {
        switch (p.pointee, rhs) {
        case let (.float(x), .float(y)): p.pointee = .float(x + y); return
        case let (.float(x), .int(y)): p.pointee = .float(x + Double(y)); return
        case let (.int(x), .int(y)):
            let (v, o) = x.addingReportingOverflow(y)
            if !o { p.pointee = .int(v); return }
        default: break
        }
    }
    p.pointee = try binary(op, p.pointee, rhs)
}

/// Unary minus.
func negate(_ v: Value) throws -> Value {
    switch v {
    case .int(let i):
        guard i != Int.min else { throw ScriptError("integer overflow") }
        return .int(-i)
    case .float(let d): return .float(-d)
    case .host(let o):
        if let h = o.hostType.binary, let r = try h("neg", v, .nil_) { return r }
    default: break
    }
    throw ScriptError("unsupported operand type for unary -: '\(v.typeName)'")
}

/// The arithmetic and comparison rules of the language (see docs/language.md).
func binary(_ op: BinOp, _ a: Value, _ b: Value) throws -> Value {
    // The common numeric cases first.
    switch (a, b) {
    case let (.int(x), .int(y)):
        switch op {
        case .add: let (r, o) = x.addingReportingOverflow(y); if o { throw ScriptError("integer overflow") }; return .int(r)
        case .sub: let (r, o) = x.subtractingReportingOverflow(y); if o { throw ScriptError("integer overflow") }; return .int(r)
        case .mul: let (r, o) = x.multipliedReportingOverflow(by: y); if o { throw ScriptError("integer overflow") }; return .int(r)
        case .lt: return .bool(x < y)
        case .le: return .bool(x <= y)
        case .gt: return .bool(x > y)
        case .ge: return .bool(x >= y)
        case .eq: return .bool(x == y)
        case .ne: return .bool(x != y)
        case .div: guard y != 0 else { throw ScriptError("division by zero") }; return .float(Double(x) / Double(y))
        case .floorDiv:
            guard y != 0 else { throw ScriptError("division by zero") }
            if x == Int.min && y == -1 { throw ScriptError("integer overflow") }
            let q = x / y
            return .int((x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q)
        case .mod:
            guard y != 0 else { throw ScriptError("division by zero") }
            if y == -1 { return .int(0) }
            let r = x % y
            return .int(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        case .pow:
            if y < 0 { return .float(Foundation.pow(Double(x), Double(y))) }
            var result = 1, base = x, e = y
            while e > 0 {
                if e & 1 == 1 { let (r, o) = result.multipliedReportingOverflow(by: base); if o { throw ScriptError("integer overflow") }; result = r }
                e >>= 1
                if e > 0 { let (r, o) = base.multipliedReportingOverflow(by: base); if o { throw ScriptError("integer overflow") }; base = r }
            }
            return .int(result)
        default: break
        }
    case (.int, .float), (.float, .int), (.float, .float):
        let x = a.number ?? 0, y = b.number ?? 0
        switch op {
        case .add: return .float(x + y)
        case .sub: return .float(x - y)
        case .mul: return .float(x * y)
        case .div: return .float(x / y)
        case .lt: return .bool(x < y)
        case .le: return .bool(x <= y)
        case .gt: return .bool(x > y)
        case .ge: return .bool(x >= y)
        case .eq: return .bool(x == y)
        case .ne: return .bool(x != y)
        case .floorDiv: return .float((x / y).rounded(.down))
        case .mod:
            let r = Foundation.fmod(x, y)
            return .float(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        case .pow: return .float(Foundation.pow(x, y))
        default: break
        }
    default: break
    }
    if case .host(let o) = a, let handler = o.hostType.binary, let r = try handler(op.rawValue, a, b) { return r }
    if case .host(let o) = b, let handler = o.hostType.binary, let r = try handler(op.rawValue, a, b) { return r }
    switch op {
    case .eq: return .bool(valuesEqual(a, b))
    case .ne: return .bool(!valuesEqual(a, b))
    case .inOp: return .bool(try contains(b, a))
    case .notIn: return .bool(!(try contains(b, a)))
    case .lt, .le, .gt, .ge:
        if case let (.string(x), .string(y)) = (a, b) {
            switch op { case .lt: return .bool(x < y); case .le: return .bool(x <= y); case .gt: return .bool(x > y); default: return .bool(x >= y) }
        }
        throw ScriptError("cannot compare \(a.typeName) and \(b.typeName)")
    case .add:
        if case let (.string(x), .string(y)) = (a, b) {
            try checkSize(x.utf8.count + y.utf8.count, "the joined string")
            return .string(x + y)
        }
        if case let (.list(x), .list(y)) = (a, b) {
            try checkSize(x.items.count + y.items.count, "the joined list")
            return .list(ListRef(x.items + y.items))
        }
    case .mul:
        if case let (.string(x), .int(n)) = (a, b) { try checkSize(x.utf8.count.multipliedReportingOverflow(by: max(0, n)).overflow ? Int.max : x.utf8.count * max(0, n), "the repeated string"); return .string(String(repeating: x, count: max(0, n))) }
        if case let (.int(n), .string(x)) = (a, b) { try checkSize(x.utf8.count.multipliedReportingOverflow(by: max(0, n)).overflow ? Int.max : x.utf8.count * max(0, n), "the repeated string"); return .string(String(repeating: x, count: max(0, n))) }
        if case let (.list(x), .int(n)) = (a, b) {
            try checkSize(x.items.count.multipliedReportingOverflow(by: max(0, n)).overflow ? Int.max : x.items.count * max(0, n), "the repeated list")
            var out: [Value] = []
            out.reserveCapacity(x.items.count * max(0, n))
            for _ in 0..<max(0, n) { out.append(contentsOf: x.items) }
            return .list(ListRef(out))
        }
    default: break
    }
    throw ScriptError("unsupported operand types for \(op.rawValue): '\(a.typeName)' and '\(b.typeName)'")
}

/// `needle in haystack`.
func contains(_ haystack: Value, _ needle: Value) throws -> Bool {
    switch haystack {
    case .list(let l): return l.items.contains { valuesEqual($0, needle) }
    case .map(let m): return try m.get(needle) != nil
    case .string(let s):
        guard case .string(let n) = needle else { throw ScriptError("'in <string>' needs a string on the left, got \(needle.typeName)") }
        return s.contains(n) || n.isEmpty
    case .range(let lo, let hi, _):
        switch needle {
        case .int(let n): return n >= lo && n < hi
        case .float(let d): return d == d.rounded() && d >= Double(lo) && d < Double(hi)
        default: return false
        }
    default: throw ScriptError("'in' needs a list, map, string or range on the right, got \(haystack.typeName)")
    }
}

final class NegExpr: Expr {
    let operand: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ operand: Expr) { self.operand = operand; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        let v = try operand.eval(f)
        do { return try negate(v) } catch { throw locate(error) }
    }
}

final class NotExpr: Expr {
    let operand: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ operand: Expr) { self.operand = operand; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value { .bool(!(try operand.evalBool(f))) }
    override func evalBool(_ f: Frame) throws -> Bool { !(try operand.evalBool(f)) }
}

final class AndExpr: Expr {
    let lhs: Expr, rhs: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ lhs: Expr, _ rhs: Expr) { self.lhs = lhs; self.rhs = rhs; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        let a = try lhs.eval(f)
        let t: Bool
        do { t = try a.truth() } catch { throw locate(error) }
        return t ? try rhs.eval(f) : a
    }
}

final class OrExpr: Expr {
    let lhs: Expr, rhs: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ lhs: Expr, _ rhs: Expr) { self.lhs = lhs; self.rhs = rhs; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        let a = try lhs.eval(f)
        let t: Bool
        do { t = try a.truth() } catch { throw locate(error) }
        return t ? a : try rhs.eval(f)
    }
}

final class TernaryExpr: Expr {
    let cond: Expr, a: Expr, b: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ cond: Expr, _ a: Expr, _ b: Expr) { self.cond = cond; self.a = a; self.b = b; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value { try cond.evalBool(f) ? a.eval(f) : b.eval(f) }
}

final class RangeExpr: Expr {
    let lo: Expr, hi: Expr, inclusive: Bool
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ lo: Expr, _ hi: Expr, inclusive: Bool) { self.lo = lo; self.hi = hi; self.inclusive = inclusive; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        let a = try lo.eval(f), b = try hi.eval(f)
        guard case .int(let x) = a, case .int(let y) = b else { throw fail("range bounds must be ints, got \(a.typeName) and \(b.typeName)") }
        if inclusive {
            guard y < Int.max else { throw fail("integer overflow") }
            return .range(x, y + 1, inclusive: true)
        }
        return .range(x, y, inclusive: false)
    }
}

// MARK: - Collections, strings

final class ListExpr: Expr {
    let items: [Expr]
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ items: [Expr]) { self.items = items; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value { .list(ListRef(try items.map { try $0.eval(f) })) }
}

final class MapExpr: Expr {
    let keys: [Expr], values: [Expr]
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ keys: [Expr], _ values: [Expr]) { self.keys = keys; self.values = values; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        let m = MapRef()
        for (k, v) in zip(keys, values) {
            let key = try k.eval(f), value = try v.eval(f)
            do { try m.set(key, value) } catch { throw k.locate(error) }
        }
        return .map(m)
    }
}

final class InterpolationExpr: Expr {
    enum Part { case text(String), value(Expr, FormatSpec?) }
    let parts: [Part]
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ parts: [Part]) { self.parts = parts; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        var s = ""
        for p in parts {
            switch p {
            case .text(let t): s += t
            case .value(let e, let spec):
                let v = try e.eval(f)
                if let spec { do { s += try spec.apply(v) } catch { throw e.locate(error) } } else { s += v.str }
            }
            do { try checkSize(s.utf8.count, "the interpolated string") } catch { throw locate(error) }
        }
        return .string(s)
    }
}

// MARK: - Indexing, slicing, members

/// A Python index into a sequence of `count` items (negative counts from the end); for host types too.
public func sequenceIndex(_ v: Value, count: Int, what: String) throws -> Int {
    let i: Int
    switch v {
    case .int(let n): i = n
    case .float(let d) where d == d.rounded() && abs(d) < 9e15: i = Int(d)
    default: throw ScriptError("\(what) index must be an int, got \(v.typeName)")
    }
    let j = i < 0 ? i + count : i
    guard j >= 0 && j < count else { throw ScriptError("index \(i) out of range for \(what) of length \(count)") }
    return j
}

func indexValue(_ obj: Value, _ key: Value) throws -> Value {
    switch obj {
    case .list(let l): return l.items[try sequenceIndex(key, count: l.items.count, what: "list")]
    case .string(let s):
        let chars = Array(s)
        return .string(String(chars[try sequenceIndex(key, count: chars.count, what: "string")]))
    case .map(let m):
        guard let v = try m.get(key) else { throw ScriptError("key \(key.repr) not in map") }
        return v
    case .range(let lo, let hi, _): return .int(lo + (try sequenceIndex(key, count: max(0, hi - lo), what: "range")))
    case .host(let o):
        if let read = o.hostType.getSubscript { return try read(o, [.index(key)]) }
        guard let h = o.hostType.index else { throw ScriptError("\(o.hostType.name) cannot be indexed") }
        return try h(o, key)
    default: throw ScriptError("\(obj.typeName) cannot be indexed")
    }
}

final class IndexExpr: Expr {
    let object: Expr, index: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ object: Expr, _ index: Expr) { self.object = object; self.index = index; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        let o = try object.eval(f), k = try index.eval(f)
        do { return try indexValue(o, k) } catch { throw locate(error) }
    }
}

/// Python slice bounds for a sequence of `count` items.
func sliceIndices(count: Int, start: Value, end: Value, step: Value) throws -> [Int] {
    func int(_ v: Value) throws -> Int? {
        switch v {
        case .nil_: return nil
        case .int(let n): return n
        default: throw ScriptError("slice bounds must be ints or nil, got \(v.typeName)")
        }
    }
    let st = try int(step) ?? 1
    guard st != 0 else { throw ScriptError("slice step cannot be zero") }
    try checkSize(count, "the slice")
    func clamp(_ v: Int?, _ dflt: Int, lo: Int, hi: Int) -> Int {
        guard var x = v else { return dflt }
        if x < 0 { x += count }
        return min(max(x, lo), hi)
    }
    var out: [Int] = []
    if st > 0 {
        let s = clamp(try int(start), 0, lo: 0, hi: count), e = clamp(try int(end), count, lo: 0, hi: count)
        var i = s
        while i < e { out.append(i); i += st }
    } else {
        let s = clamp(try int(start), count - 1, lo: -1, hi: count - 1), e = clamp(try int(end), -1, lo: -1, hi: count - 1)
        var i = s
        while i > e { out.append(i); i += st }
    }
    return out
}

/// `o[s:e:st]` of a list, string, range or host object (each bound nil when omitted).
func sliceValue(_ o: Value, _ s: Value, _ e: Value, _ st: Value) throws -> Value {
    switch o {
    case .list(let l): return .list(ListRef(try sliceIndices(count: l.items.count, start: s, end: e, step: st).map { l.items[$0] }))
    case .string(let str):
        let chars = Array(str)
        return .string(String(try sliceIndices(count: chars.count, start: s, end: e, step: st).map { chars[$0] }))
    case .range(let lo, let hi, _):
        return .list(ListRef(try sliceIndices(count: max(0, hi - lo), start: s, end: e, step: st).map { .int(lo + $0) }))
    case .host(let h):
        if let read = h.hostType.getSubscript { return try read(h, [.slice(s, e, st)]) }
        guard let slice = h.hostType.slice else { throw ScriptError("\(h.hostType.name) cannot be sliced") }
        return try slice(h, s, e, st)
    default: throw ScriptError("\(o.typeName) cannot be sliced")
    }
}

final class SliceExpr: Expr {
    let object: Expr, start: Expr?, end: Expr?, step: Expr?
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ object: Expr, _ start: Expr?, _ end: Expr?, _ step: Expr?) {
        self.object = object; self.start = start; self.end = end; self.step = step
        super.init(ctx, file, pos)
    }
    override func eval(_ f: Frame) throws -> Value {
        let o = try object.eval(f)
        let s = try start?.eval(f) ?? .nil_, e = try end?.eval(f) ?? .nil_, st = try step?.eval(f) ?? .nil_
        do { return try sliceValue(o, s, e, st) } catch { throw locate(error) }
    }
}

final class MemberExpr: Expr {
    let object: Expr, name: String
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ object: Expr, _ name: String) { self.object = object; self.name = name; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value {
        let o = try object.eval(f)
        do { return try ctx.member(o, name) } catch { throw locate(error) }
    }
}

// MARK: - Calls

final class CallExpr: Expr {
    let callee: Expr
    let args: [Expr]
    let names: [String?]
    let hasKeywords: Bool
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ callee: Expr, _ args: [Expr], _ names: [String?]) {
        self.callee = callee; self.args = args; self.names = names
        hasKeywords = names.contains { $0 != nil }
        super.init(ctx, file, pos)
    }

    override func eval(_ f: Frame) throws -> Value {
        let c = try callee.eval(f)
        if case .function(let fn) = c, !hasKeywords, fn.proto.params.count == args.count {
            // Fast path: arguments go straight into the new frame (a compiled function's window).
            if let chunk = ctx.bytecode(fn.proto) {
                return try ctx.callCompiled(fn, chunk, site: self) { w in for i in 0..<args.count { w[i] = try args[i].eval(f) } }
            }
            let frame = Frame.make(count: fn.proto.slotCount, parent: fn.env)
            for i in 0..<args.count { frame.slots[i] = try args[i].eval(f) }
            return try ctx.run(fn, frame, callSite: self)
        }
        var positional: [Value] = [], keywords: [(String, Value)] = []
        for (e, n) in zip(args, names) {
            let v = try e.eval(f)
            if let n { keywords.append((n, v)) } else { positional.append(v) }
        }
        return try ctx.call(c, positional, keywords, site: self)
    }
}

final class MethodCallExpr: Expr {
    let object: Expr, name: String
    let args: [Expr], names: [String?]
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ object: Expr, _ name: String, _ args: [Expr], _ names: [String?]) {
        self.object = object; self.name = name; self.args = args; self.names = names
        super.init(ctx, file, pos)
    }
    override func eval(_ f: Frame) throws -> Value {
        let o = try object.eval(f)
        let m: Value
        do { m = try ctx.member(o, name) } catch { throw locate(error) }
        var positional: [Value] = [], keywords: [(String, Value)] = []
        for (e, n) in zip(args, names) {
            let v = try e.eval(f)
            if let n { keywords.append((n, v)) } else { positional.append(v) }
        }
        return try ctx.call(m, positional, keywords, site: self)
    }
}

final class FunctionExpr: Expr {
    let proto: FunctionProto
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ proto: FunctionProto) { self.proto = proto; super.init(ctx, file, pos) }
    override func eval(_ f: Frame) throws -> Value { .function(Function(proto: proto, env: f)) }
}

// MARK: - Statements

final class ExprStmt: Stmt {
    let expr: Expr
    init(_ expr: Expr) { self.expr = expr; super.init(expr.ctx, expr.file, expr.pos) }
    override func exec(_ f: Frame) throws -> Flow {
        state.pointee.lastValue = try expr.eval(f)
        return .normal
    }
}

/// `let`/`var` declarations and plain assignment to a name.
final class AssignStmt: Stmt {
    let target: Target, value: Expr
    /// A declaration may create a global; a plain assignment needs one that exists.
    let declares: Bool
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ target: Target, _ value: Expr, declares: Bool) {
        self.target = target; self.value = value; self.declares = declares
        super.init(ctx, file, pos)
    }
    override func exec(_ f: Frame) throws -> Flow {
        let v = try value.eval(f)
        if !declares { _ = try slot(target, f) }  // the name must exist
        store(target, v, f)
        return .normal
    }
}

/// `x op= e` on a name.
final class CompoundAssignStmt: Stmt {
    let target: Target, op: BinOp, value: Expr
    /// The right side when it is a literal (`i += 1`), read without a call.
    let constant: Value?
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ target: Target, _ op: BinOp, _ value: Expr) {
        self.target = target; self.op = op; self.value = value
        constant = (value as? ConstExpr)?.value
        super.init(ctx, file, pos)
    }
    override func exec(_ f: Frame) throws -> Flow {
        let rhs: Value
        if let c = constant { rhs = c } else { rhs = try value.eval(f) }
        let p = try slot(target, f)
        do { try updateInPlace(p, op, rhs) } catch { throw locate(error) }
        return .normal
    }
}

/// `a[i] = e` and `a[i] op= e`.
final class IndexAssignStmt: Stmt {
    let object: Expr, index: Expr, op: BinOp?, value: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ object: Expr, _ index: Expr, _ op: BinOp?, _ value: Expr) {
        self.object = object; self.index = index; self.op = op; self.value = value
        super.init(ctx, file, pos)
    }
    override func exec(_ f: Frame) throws -> Flow {
        let o = try object.eval(f), k = try index.eval(f)
        var v = try value.eval(f)
        do {
            if let op { v = try binary(op, try indexValue(o, k), v) }
            try storeIndex(o, k, v)
        } catch { throw locate(error) }
        return .normal
    }
}

/// `o[k] = v` on a list, a map or a host object.
func storeIndex(_ o: Value, _ k: Value, _ v: Value) throws {
    switch o {
    case .list(let l):
        l.items[try sequenceIndex(k, count: l.items.count, what: "list")] = v
        l.stored(v)
    case .map(let m): try m.set(k, v)
    case .host(let h):
        if let write = h.hostType.setSubscript { try write(h, [.index(k)], v); break }
        guard let set = h.hostType.setIndex else { throw ScriptError("\(h.hostType.name) does not support item assignment") }
        try set(h, k, v)
    default: throw ScriptError("\(o.typeName) does not support item assignment")
    }
}

extension Interpreter {
    /// `o.name = v`, or `o.name op= v`: a host object's property that can be set.
    func assignMember(_ o: Value, _ name: String, _ op: BinOp?, _ value: Value) throws {
        var v = value
        if let op { v = try binary(op, try member(o, name), v) }
        guard case .host(let h) = o else { throw ScriptError("cannot set member '\(name)' of \(o.typeName)") }
        guard let prop = h.hostType.properties[name] else {
            throw ScriptError("\(h.hostType.name) has no property '\(name)'\(didYouMean(name, Array(h.hostType.properties.keys)))")
        }
        guard let set = prop.set else { throw ScriptError("property '\(name)' of \(h.hostType.name) is read-only") }
        try set(h, v)
    }
}

/// `o.p = e` and `o.p op= e`.
final class MemberAssignStmt: Stmt {
    let object: Expr, name: String, op: BinOp?, value: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ object: Expr, _ name: String, _ op: BinOp?, _ value: Expr) {
        self.object = object; self.name = name; self.op = op; self.value = value
        super.init(ctx, file, pos)
    }
    override func exec(_ f: Frame) throws -> Flow {
        let o = try object.eval(f)
        let v = try value.eval(f)
        do { try ctx.assignMember(o, name, op, v) } catch { throw locate(error) }
        return .normal
    }
}

final class BlockStmt: Stmt {
    let body: ContiguousArray<Stmt>
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ body: [Stmt]) { self.body = ContiguousArray(body); super.init(ctx, file, pos) }
    override func exec(_ f: Frame) throws -> Flow { try runStatements(body, f) }
}

/// Runs statements until one breaks, continues or returns (indexing, not iterating: no retains).
@inline(__always)
func runStatements(_ body: ContiguousArray<Stmt>, _ f: Frame) throws -> Flow {
    var k = 0
    let n = body.count
    while k < n {
        let flow = try body[k].exec(f)
        if case .normal = flow { k += 1; continue }
        return flow
    }
    return .normal
}

final class IfStmt: Stmt {
    let cond: Expr, then: Stmt, otherwise: Stmt?
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ cond: Expr, _ then: Stmt, _ otherwise: Stmt?) {
        self.cond = cond; self.then = then; self.otherwise = otherwise
        super.init(ctx, file, pos)
    }
    override func exec(_ f: Frame) throws -> Flow {
        if try cond.evalBool(f) { return try then.exec(f) }
        return try otherwise?.exec(f) ?? .normal
    }
}

final class WhileStmt: Stmt {
    let cond: Expr, body: Stmt
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ cond: Expr, _ body: Stmt) { self.cond = cond; self.body = body; super.init(ctx, file, pos) }
    override func exec(_ f: Frame) throws -> Flow {
        while try cond.evalBool(f) {
            if state.pointee.mustStop() { throw stopError() }
            switch try body.exec(f) {
            case .breakLoop: return .normal
            case .returnValue: return .returnValue
            default: continue
            }
        }
        return .normal
    }
}

final class ForStmt: Stmt {
    let first: Target, second: Target?, iterable: Expr, body: Stmt
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ first: Target, _ second: Target?, _ iterable: Expr, _ body: Stmt) {
        self.first = first; self.second = second; self.iterable = iterable; self.body = body
        super.init(ctx, file, pos)
    }

    /// Binds the loop names and runs the body once; nil means stop the loop with that flow.
    @inline(__always) private func step(_ item: Value, _ f: Frame) throws -> Flow? {
        if state.pointee.mustStop() { throw stopError() }
        if let second {
            guard case .list(let pair) = item, pair.items.count == 2 else {
                throw fail("'for a, b in …' needs pairs (2-element lists), got \(item.repr)")
            }
            store(first, pair.items[0], f)
            store(second, pair.items[1], f)
        } else {
            store(first, item, f)
        }
        switch try body.exec(f) {
        case .breakLoop: return .normal
        case .returnValue: return .returnValue
        default: return nil
        }
    }

    override func exec(_ f: Frame) throws -> Flow {
        let it = try iterable.eval(f)
        switch it {
        case .range(let lo, let hi, _):
            var i = lo
            while i < hi {
                if second == nil {
                    if state.pointee.mustStop() { throw stopError() }
                    store(first, .int(i), f)
                    switch try body.exec(f) {
                    case .breakLoop: return .normal
                    case .returnValue: return .returnValue
                    default: break
                    }
                } else if let flow = try step(.int(i), f) { return flow }
                i += 1
            }
        case .list(let l):
            for item in l.items { if let flow = try step(item, f) { return flow } }
        case .string(let s):
            for c in s { if let flow = try step(.string(String(c)), f) { return flow } }
        case .map(let m):
            for (k, v) in zip(m.keys, m.values) {
                if second != nil {
                    if let flow = try step(.list(ListRef([k, v])), f) { return flow }
                } else if let flow = try step(k, f) { return flow }
            }
        case .host(let o):
            guard let make = o.hostType.iterate else { throw fail("\(o.hostType.name) is not iterable") }
            let next: () throws -> Value?
            do { next = try make(o) } catch { throw locate(error) }
            while true {
                let item: Value?
                do { item = try next() } catch { throw locate(error) }
                guard let item else { break }
                if let flow = try step(item, f) { return flow }
            }
        default:
            throw fail("\(it.typeName) is not iterable")
        }
        return .normal
    }
}

final class BreakStmt: Stmt { override func exec(_ f: Frame) throws -> Flow { .breakLoop } }
final class ContinueStmt: Stmt { override func exec(_ f: Frame) throws -> Flow { .continueLoop } }

final class ReturnStmt: Stmt {
    let value: Expr?
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ value: Expr?) { self.value = value; super.init(ctx, file, pos) }
    override func exec(_ f: Frame) throws -> Flow {
        state.pointee.returned = try value?.eval(f) ?? .nil_
        return .returnValue
    }
}

final class AssertStmt: Stmt {
    let cond: Expr, message: Expr?
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ cond: Expr, _ message: Expr?) { self.cond = cond; self.message = message; super.init(ctx, file, pos) }
    override func exec(_ f: Frame) throws -> Flow {
        if try cond.evalBool(f) { return .normal }
        if let message { throw fail("assertion failed: \(try message.eval(f).str)") }
        throw fail("assertion failed")
    }
}

final class ThrowStmt: Stmt {
    let value: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ value: Expr) { self.value = value; super.init(ctx, file, pos) }
    override func exec(_ f: Frame) throws -> Flow { throw fail(try value.eval(f).str) }
}

final class TryStmt: Stmt {
    let body: Stmt, errorTarget: Target?, handler: Stmt
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ body: Stmt, _ errorTarget: Target?, _ handler: Stmt) {
        self.body = body; self.errorTarget = errorTarget; self.handler = handler
        super.init(ctx, file, pos)
    }
    override func exec(_ f: Frame) throws -> Flow {
        let depth = ctx.depth
        do {
            return try body.exec(f)
        } catch let e as ScriptError {
            ctx.depth = depth
            if let errorTarget { store(errorTarget, .error(ErrorValue(message: e.message, line: (e.pos?.line ?? 0) + (e.file?.lineOffset ?? 0))), f) }
            return try handler.exec(f)
        }
    }
}

final class ImportStmt: Stmt {
    let name: String
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ name: String) { self.name = name; super.init(ctx, file, pos) }
    override func exec(_ f: Frame) throws -> Flow {
        do { try ctx.importModule(name, from: file) } catch { throw locate(error) }
        return .normal
    }
}
