// The bytecode a function body compiles to (see BytecodeCompiler.swift) and the VM runs (VM.swift).
//
// Registers are a window of the VM's value stack: the function's slots first (parameters and
// every local, numbered as the tree numbers them), then temporaries. An instruction is plain
// data: an opcode and three operands. What the compiler does not translate (a `try`, a list
// literal, ...) stays a tree node that the instruction `exec` or `eval` runs on the same slots.

/// One instruction. The operands of `binary`, `update`, `updateGlobal`, `index`, `jumpUnless`
/// and `ret` that read a value may be constants: -1 - the constant's index.
struct Instr {
    var op: Op
    /// The operator of `binary`, `update` and `jumpUnless` (an index of `BinOp.all`), and of
    /// `setIndex` (that index + 1; 0 for a plain store).
    var sub: UInt8 = 0
    var a: Int32 = 0, b: Int32 = 0, c: Int32 = 0

    init(_ op: Op, _ a: Int = 0, _ b: Int = 0, _ c: Int = 0, sub: UInt8 = 0) {
        self.op = op
        self.sub = sub
        self.a = Int32(truncatingIfNeeded: a)
        self.b = Int32(truncatingIfNeeded: b)
        self.c = Int32(truncatingIfNeeded: c)
    }
}

enum Op: UInt8 {
    /// r[a] = constant b
    case loadK
    /// r[a] = r[b]
    case move
    /// r[a] = the slot c of the frame `b` levels out (1: where the function was made)
    case getUpvalue
    /// that slot = r[a]
    case setUpvalue
    /// r[a] = global b (an error when not defined)
    case getGlobal
    /// global b = r[a]; with c = 1 the global must be defined already (plain assignment)
    case setGlobal
    /// r[a] = r[b] (sub) r[c]
    case binary
    /// `binary` with both operands registers, and with a register and a constant (`finish`
    /// writes these where it can: no operand is tested for being a constant)
    case binaryRR, binaryRK
    /// r[a] = r[a] (sub) r[b], in place (`x += e`)
    case update
    /// `update` by the constant b (`x += 0.5`)
    case updateK
    /// global a = global a (sub) r[b], in place (an error when not defined)
    case updateGlobal
    /// r[a] = -r[b]
    case neg
    /// r[a] = not r[b] (the truth of r[b], an error located at the operand)
    case not
    /// go to a
    case jump
    /// go to b when r[a] is false (the truth of r[a])
    case jumpIfFalse
    /// go to b when r[a] is true
    case jumpIfTrue
    /// go to c unless r[a] (sub) r[b], a comparison (an `if` or a `while` on one without a
    /// Value in between when both are ints or both floats)
    case jumpUnless
    /// r[a] = r[b] (sub) c, `binary` with an int constant on the right written in the instruction
    /// (`n - 1`): an int sum or difference without overflow done in place, anything else as `binary`
    case binaryI
    /// go to c unless r[a] (sub) b, `jumpUnless` against an int constant written in the
    /// instruction (`n < 2`)
    case jumpUnlessI
    /// r[a] (sub)= b, `update` by an int constant written in the instruction (`i += 1`): an int
    /// sum or difference without overflow done in place, anything else as `update`
    case updateI
    /// global a (sub)= b, `updateGlobal` by an int constant written in the instruction
    case updateGlobalI
    /// r[a] = r[a](r[a + 1], ..., r[a + b])
    case call
    /// r[a] = global c(r[a + 1], ..., r[a + b]), the global defined when this was compiled (so
    /// that looking it up after the arguments is no change of order: it cannot be undefined)
    case callGlobal
    /// r[a] = member c of the value at the `operand` after it (its `a`: a register when its `b`
    /// is 1, else a global), called with r[a + 1], ..., r[a + b]: the value read where it is, so
    /// that a function its map holds is the only value copied (the arguments are settled:
    /// reading it after them is no change); sub 1: a call of `append` with one argument, done
    /// here on a list
    case callMethodOn
    /// r[a] = member c of r[a], called with r[a + 1], ..., r[a + b]
    case callMethod
    /// `callMethod` of `append` with one argument: on a list, the core library's append done here
    case append
    /// What r[a] + 1 will call for member c of r[a], found before the arguments are evaluated (as
    /// the tree finds it): a map's item or another member value (then r[a] = nil: no receiver),
    /// or a declared method (r[a] stays, the receiver)
    case method
    /// r[a] = r[a + 1](r[a + 2], ..., r[a + 1 + b]), with r[a] as the receiver unless it is nil
    case callResolved
    /// return r[a]
    case ret
    /// return nil
    case retNil
    /// r[a] = r[b][r[c]]
    case index
    /// r[a] = global b[r[c]], the global read where it is (r[c] is settled: reading it after
    /// is no change)
    case indexGlobal
    /// r[a][r[b]] = r[c] (sub: an operator applied to the old item first)
    case setIndex
    /// The start of a `for`: r[a] holds what is iterated; r[a + 1] and r[a + 2] keep the loop's
    /// state. Goes to c if it is empty or not iterable.
    case forPrep
    /// The next item of that loop into r[b], or go to c when there is none (the interrupt and
    /// the step limit are checked first).
    case forNext
    /// r[b], r[c] = the two items of the pair r[a] (a `for` over two names)
    case unpack
    /// The interrupt and the step limit (a `while` loop's round).
    case check
    /// When r[a] (sub) r[b], a comparison: the interrupt and the step limit, then go to c (the
    /// bottom of a `while` on a comparison; its stop is reported at the loop, `stopSites`)
    case loopIf
    /// `loopIf` against an int constant written in the instruction: when r[a] (sub) b, the
    /// interrupt and the step limit, then go to c (`while i < 100`)
    case loopIfI
    /// r[a] = r[b] ..< r[c] (sub 1: r[b] ... r[c]), both ints
    case range
    /// r[a] = [r[b], ..., r[b + c - 1]]
    case list
    /// r[a] = a new empty map (a map literal's items follow, each a `setIndex`)
    case newMap
    /// r[a] = r[b][r[b + 1] : r[b + 2] : r[b + 3]]
    case slice
    /// r[a] = r[b][items], the items of the subscript exprs[c] in r[b + 1] on
    case multiIndex
    /// r[b][items] (op)= r[a], the subscript assignment stmts[c] with its items in r[b + 1] on
    case setSubscript
    /// r[b].name (op)= r[a], the member assignment stmts[c]
    case setMember
    /// an assertion failed: its message r[a] as text (-1: none)
    case assertFailed
    /// r[a] = member c (a constant name) of r[b]: a property, a bound method, a map's key
    case member
    /// r[a] (a string being built) += part `sub` of the interpolated string exprs[c]: its text,
    /// or r[b] formatted by the part's spec
    case interpolate
    /// r[a] = a function made from the FunctionExpr exprs[b], closing over this call's frame
    case closure
    /// r[a] = r[a](r[a + 1], ..., r[a + b]) with the argument names of the call exprs[c]
    case callKeywords
    /// raise an error whose message is r[a] as text (`throw`)
    case raise
    /// r[a] = expression b (a tree node) evaluated on this frame's slots
    case eval
    /// statement a (a tree node) run on this frame's slots; where a `break` and a `continue`
    /// coming out of it go (b, c; -1 outside a loop), leaving `sub` `try`s
    case exec
    /// a `try` starts: its handler at a, which finds the error in r[b]
    case tryBegin
    /// the innermost a `try`s end (their body finished, or a jump leaves them)
    case tryEnd
    /// the session's last value = r[a] (an expression statement of a cell's top level), echoed
    /// when sub is 1 (one written at the top level itself: `Interpreter.echo`)
    case keep
    /// An operand of the instruction before it that did not fit in it: never run
    case operand
}

/// A constant as a map key, hashed once (`ok` false: it cannot be one).
struct ChunkKey {
    let form: MapKeyForm
    let hash: UInt64
    let ok: Bool
}

/// A function body's bytecode.
final class Chunk {
    var code: [Instr] = []
    /// The node each instruction came from: where its errors are located.
    var sites: [Node] = []
    /// Where an instruction's stop (the interrupt, the step limit) is reported, when not at its
    /// site: a `loopIf`'s, at its loop.
    var stopSites: [Int: Node] = [:]
    var constants: [Value] = []
    var exprs: [Expr] = []
    var stmts: [Stmt] = []
    /// Registers: the function's slots, then its temporaries.
    var registers = 0
    let slots: Int
    let params: Int
    /// Registers in a heap frame, not a stack window: the function makes functions, which keep
    /// its frame, or this is a cell's top level.
    let onHeap: Bool

    /// The code and the constants where the VM reads them, without an array's checks and
    /// reference count (made by `finish`).
    private(set) var instructions = UnsafeMutablePointer<Instr>.allocate(capacity: 1)
    private(set) var constantValues = UnsafeMutablePointer<Value>.allocate(capacity: 1)
    private var finished = 0

    init(slots: Int, params: Int, onHeap: Bool) {
        self.slots = slots
        self.params = params
        self.onHeap = onHeap
        registers = slots
        entry = .allocate(capacity: 1)
        entry.initialize(to: Entry(code: instructions, constants: constantValues, keys: keys, registers: registers, slots: slots, onHeap: onHeap, chunk: Unmanaged.passUnretained(self)))
    }

    /// Fixes the code: the compiler adds nothing after this. A `binary` or an `update` whose
    /// operands are known to be registers, or a register and a constant, becomes the form that
    /// reads them without testing.
    func finish() {
        for pc in code.indices {
            let i = code[pc]
            if i.op == .binary, i.b >= 0 { code[pc] = Instr(i.c >= 0 ? .binaryRR : .binaryRK, Int(i.a), Int(i.b), i.c >= 0 ? Int(i.c) : Int(-i.c - 1), sub: i.sub) }
            if i.op == .update, i.b < 0 { code[pc] = Instr(.updateK, Int(i.a), Int(-i.b - 1), sub: i.sub) }
        }
        instructions.deallocate()
        instructions = .allocate(capacity: max(code.count, 1))
        instructions.initialize(from: code, count: code.count)
        constantValues.deinitialize(count: finished)
        constantValues.deallocate()
        constantValues = .allocate(capacity: max(constants.count, 1))
        constantValues.initialize(from: constants, count: constants.count)
        finished = constants.count
        keys.deinitialize(count: keyCount)
        keys.deallocate()
        keys = .allocate(capacity: max(constants.count, 1))
        keys.initialize(from: constants.map { c in (try? MapKeyForm(c)).map { ChunkKey(form: $0, hash: $0.hash, ok: true) } ?? ChunkKey(form: .none, hash: 0, ok: false) }, count: constants.count)
        keyCount = constants.count
        entry.pointee = Entry(code: instructions, constants: constantValues, keys: keys, registers: registers, slots: slots, onHeap: onHeap, chunk: Unmanaged.passUnretained(self))
    }

    /// What a call of this chunk reads, as plain data at an address of its own: a call's record
    /// points to it (8 bytes, where a copy took 56), with no reference count on the chunk (made
    /// by `finish`).
    let entry: UnsafeMutablePointer<Entry>
    struct Entry {
        let code: UnsafeMutablePointer<Instr>
        let constants: UnsafeMutablePointer<Value>
        let keys: UnsafeMutablePointer<ChunkKey>
        let registers: Int
        /// Its declared slots: the registers after them are temporaries.
        let slots: Int
        let onHeap: Bool
        let chunk: Unmanaged<Chunk>
    }

    /// Each constant as a map key, hashed once (nil: it cannot be one): `m.name(...)` looks
    /// `name` up in a map without hashing the string at each call.
    private(set) var keys = UnsafeMutablePointer<ChunkKey>.allocate(capacity: 1)
    private var keyCount = 0

    deinit {
        entry.deallocate()
        keys.deinitialize(count: keyCount)
        keys.deallocate()
        instructions.deallocate()
        constantValues.deinitialize(count: finished)
        constantValues.deallocate()
    }

    /// One instruction per line: its index, its source line, the opcode and its operands.
    func disassembly(name: String, globals: [String] = []) -> String {
        func global(_ k: Int32) -> String { Int(k) < globals.count ? globals[Int(k)] : "global \(k)" }
        func v(_ x: Int32) -> String { x >= 0 ? "r\(x)" : constants[Int(-x - 1)].repr }
        var lines = ["fn \(name): \(params) parameter\(params == 1 ? "" : "s"), \(slots) slots, \(registers) registers\(onHeap ? " in a heap frame" : ""), \(code.count) instructions"]
        for (pc, i) in code.enumerated() {
            var text = "\(pc)".leftPadded(5) + "  " + "\(sites[pc].pos.line)".leftPadded(4) + "  " + "\(i.op)".padded(15)
            switch i.op {
            case .loadK: text += "r\(i.a) = \(constants[Int(i.b)].repr)"
            case .move: text += "r\(i.a) = r\(i.b)"
            case .getUpvalue: text += "r\(i.a) = up(\(i.b)).\(i.c)"
            case .setUpvalue: text += "up(\(i.b)).\(i.c) = r\(i.a)"
            case .getGlobal: text += "r\(i.a) = \(global(i.b))"
            case .setGlobal: text += "\(global(i.b)) = r\(i.a)"
            case .binary: text += "r\(i.a) = \(v(i.b)) \(BinOp.all[Int(i.sub)].rawValue) \(v(i.c))"
            case .binaryRR: text += "r\(i.a) = r\(i.b) \(BinOp.all[Int(i.sub)].rawValue) r\(i.c)"
            case .binaryRK: text += "r\(i.a) = r\(i.b) \(BinOp.all[Int(i.sub)].rawValue) \(constants[Int(i.c)].repr)"
            case .updateK: text += "r\(i.a) \(BinOp.all[Int(i.sub)].rawValue)= \(constants[Int(i.b)].repr)"
            case .update: text += "r\(i.a) \(BinOp.all[Int(i.sub)].rawValue)= \(v(i.b))"
            case .updateGlobal: text += "\(global(i.a)) \(BinOp.all[Int(i.sub)].rawValue)= \(v(i.b))"
            case .neg, .not: text += "r\(i.a) = r\(i.b)"
            case .jump: text += "→ \(i.a)"
            case .jumpIfFalse, .jumpIfTrue: text += "r\(i.a) → \(i.b)"
            case .jumpUnless: text += "\(v(i.a)) \(BinOp.all[Int(i.sub)].rawValue) \(v(i.b)) else → \(i.c)"
            case .updateI: text += "r\(i.a) \(BinOp.all[Int(i.sub)].rawValue)= \(i.b)"
            case .updateGlobalI: text += "\(global(i.a)) \(BinOp.all[Int(i.sub)].rawValue)= \(i.b)"
            case .binaryI: text += "r\(i.a) = r\(i.b) \(BinOp.all[Int(i.sub)].rawValue) \(i.c)"
            case .jumpUnlessI: text += "r\(i.a) \(BinOp.all[Int(i.sub)].rawValue) \(i.b) else → \(i.c)"
            case .call: text += "r\(i.a) = r\(i.a)(\(i.b) arguments)"
            case .callGlobal: text += "r\(i.a) = \(global(i.c))(\(i.b) arguments)"
            case .callMethod, .append: text += "r\(i.a) = r\(i.a).\(constants[Int(i.c)].str)(\(i.b) arguments)"
            case .callMethodOn:
                let o = pc + 1 < code.count ? code[pc + 1].b == 1 ? "r\(code[pc + 1].a)" : global(code[pc + 1].a) : "?"
                text += "r\(i.a) = \(o).\(constants[Int(i.c)].str)(\(i.b) arguments)"
            case .operand: text += "\(i.a)"
            case .method: text += "r\(i.a + 1) = r\(i.a).\(constants[Int(i.c)].str)"
            case .callResolved: text += "r\(i.a) = r\(i.a + 1)(\(i.b) arguments), receiver r\(i.a)"
            case .ret: text += v(i.a)
            case .retNil: break
            case .index: text += "r\(i.a) = \(v(i.b))[\(v(i.c))]"
            case .indexGlobal: text += "r\(i.a) = \(global(i.b))[\(v(i.c))]"
            case .setIndex: text += "r\(i.a)[r\(i.b)] \(i.sub == 0 ? "" : BinOp.all[Int(i.sub) - 1].rawValue)= r\(i.c)"
            case .forPrep: text += "r\(i.a), else → \(i.c)"
            case .forNext: text += "r\(i.b) = next of r\(i.a), else → \(i.c)"
            case .check: break
            case .unpack: text += "r\(i.b), r\(i.c) = r\(i.a)"
            case .loopIf: text += "\(v(i.a)) \(BinOp.all[Int(i.sub)].rawValue) \(v(i.b)) → \(i.c)"
            case .loopIfI: text += "r\(i.a) \(BinOp.all[Int(i.sub)].rawValue) \(i.b) → \(i.c)"
            case .range: text += "r\(i.a) = r\(i.b) \(i.sub == 1 ? "..." : "..<") r\(i.c)"
            case .list: text += "r\(i.a) = [r\(i.b) ..< r\(i.b + i.c)]"
            case .newMap: text += "r\(i.a) = {}"
            case .slice: text += "r\(i.a) = r\(i.b)[r\(i.b + 1):r\(i.b + 2):r\(i.b + 3)]"
            case .multiIndex: text += "r\(i.a) = r\(i.b)[items from r\(i.b + 1)]"
            case .setMember: text += "r\(i.b).member = r\(i.a)"
            case .assertFailed: text += i.a >= 0 ? "r\(i.a)" : ""
            case .setSubscript: text += "r\(i.b)[items from r\(i.b + 1)] = r\(i.a)"
            case .member: text += "r\(i.a) = r\(i.b).\(constants[Int(i.c)].str)"
            case .interpolate: text += "r\(i.a) += part \(i.sub)" + (i.b >= 0 ? " of r\(i.b)" : "")
            case .closure: text += "r\(i.a) = fn \((exprs[Int(i.b)] as? FunctionExpr)?.proto.name ?? "?")"
            case .callKeywords: text += "r\(i.a) = r\(i.a)(\(i.b) arguments, named)"
            case .raise: text += "r\(i.a)"
            case .eval: text += "r\(i.a) = tree \(type(of: exprs[Int(i.b)]))"
            case .exec: text += "tree \(type(of: stmts[Int(i.a)]))" + (i.b >= 0 ? ", break → \(i.b), continue → \(i.c)" : "")
            case .keep: text += "r\(i.a)"
            case .tryBegin: text += "handler → \(i.a), error in r\(i.b)"
            case .tryEnd: text += "\(i.a)"
            }
            lines.append(text)
        }
        return lines.joined(separator: "\n")
    }
}

extension BinOp {
    /// Every operator, in a fixed order: `Instr.sub` is an index of it.
    static let all: [BinOp] = [.add, .sub, .mul, .div, .floorDiv, .mod, .pow, .matmul, .eq, .ne, .lt, .le, .gt, .ge, .inOp, .notIn]
    var index: UInt8 { UInt8(BinOp.all.firstIndex(of: self) ?? 0) }

    /// Comparison `all[k]` of two ints or two floats, straight from the index (nil: `k` is not
    /// a comparison). The same switch as `compare(_:_:_:)` over a BinOp: going through
    /// `BinOp.at(k)` to that one made fib 12% and a float loop 9% slower (the two switches stay
    /// two), so the VM's hot paths keep this one.
    @inline(__always) static func compare<T: Comparable>(_ k: UInt8, _ x: T, _ y: T) -> Bool? {
        switch k {
        case 8: return x == y
        case 9: return x != y
        case 10: return x < y
        case 11: return x <= y
        case 12: return x > y
        case 13: return x >= y
        default: return nil
        }
    }

    /// `all[k]` without touching the array (the VM's inner loop).
    @inline(__always) static func at(_ k: UInt8) -> BinOp {
        switch k {
        case 0: return .add
        case 1: return .sub
        case 2: return .mul
        case 3: return .div
        case 4: return .floorDiv
        case 5: return .mod
        case 6: return .pow
        case 7: return .matmul
        case 8: return .eq
        case 9: return .ne
        case 10: return .lt
        case 11: return .le
        case 12: return .gt
        case 13: return .ge
        case 14: return .inOp
        default: return .notIn
        }
    }
}

private extension String {
    func padded(_ n: Int) -> String { self + String(repeating: " ", count: max(0, n - count)) }
    func leftPadded(_ n: Int) -> String { String(repeating: " ", count: max(0, n - count)) + self }
}

extension Interpreter {
    /// The bytecode of each function `source` declares with `fn` (at the top and inside other
    /// functions), or why it runs as a tree: what `trickbook disasm` prints. Nothing runs.
    public func disassemble(_ source: String, name: String) throws -> String {
        var compiler = try Compiler(ctx: self, file: SourceFile(name: name, text: source))
        let (body, _) = try compiler.compileChunk()
        var out: [String] = []
        var pending: [Stmt] = Array(body)
        while !pending.isEmpty {
            let s = pending.removeFirst()
            guard let a = s as? AssignStmt, let f = a.value as? FunctionExpr else { continue }
            let p = f.proto
            if let chunk = BytecodeCompiler.compile(p) {
                out.append(chunk.disassembly(name: p.name, globals: globalNames))
            } else {
                let why = p.defaultsMakeFunctions ? "a default argument makes a function"
                    : p.body.isEmpty ? "its body is empty" : "it needs more than \(BytecodeCompiler.maxRegisters) registers"
                out.append("fn \(p.name): runs as a tree (\(why))")
            }
            pending.append(contentsOf: p.body)
        }
        return out.isEmpty ? "\(name): no functions" : out.joined(separator: "\n\n")
    }
}
