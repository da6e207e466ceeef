import Foundation

/// A script value. Numbers, booleans and nil carry no references, so the hot paths of arithmetic
/// and comparisons never touch reference counts.
public enum Value {
    case nil_
    case bool(Bool)
    case int(Int)
    case float(Double)
    /// Boxed (two words), as are a range's bounds: a value is then one word and a tag, 16 bytes in
    /// a list or a register instead of 24.
    indirect case string(String)
    case list(ListRef)
    case map(MapRef)
    /// Integers lo ..< hi; an inclusive range `a...b` is stored as a ..< b + 1 and remembers its form.
    indirect case range(Int, Int, inclusive: Bool)
    case function(Function)
    case builtin(Builtin)
    case host(HostObject)
    case error(ErrorValue)
}

/// A list, shared by reference as in Python.
public final class ListRef {
    public var items: [Value]
    /// The session whose cycle collector may track this list (0: none). A list is tracked once
    /// it holds something that can lead back to it (a list, map or function): until then it
    /// cannot be part of a cycle, and lists of numbers cost nothing to the collector.
    let gcOwner: Int32
    var gcTracked = false
    public init(_ items: [Value]) {
        self.items = items
        gcOwner = CycleCollector.currentOwner
        if gcOwner != 0, items.contains(where: \.canLeadBack) { track() }
    }
    /// Call after storing `v` into the list.
    @inline(__always) func stored(_ v: Value) { if !gcTracked, gcOwner != 0, v.canLeadBack { track() } }
    func track() {
        gcTracked = true
        CycleCollector.register(self, owner: gcOwner)
    }
    deinit {
        if gcTracked { CycleCollector.unregister(self, owner: gcOwner) }
        Teardown.take(&items)
    }
}

/// A map with insertion order, shared by reference.
public final class MapRef {
    public private(set) var keys: [Value] = [] { didSet { keyBase = keys.withUnsafeBufferPointer { $0.baseAddress }; keyCount = keys.count } }
    private let index: MapIndex
    public private(set) var values: [Value] = [] { didSet { valueBase = values.withUnsafeBufferPointer { $0.baseAddress } } }
    /// Where the arrays keep their items, refreshed at each change: a lookup reads them there
    /// (a call of `withUnsafeBufferPointer` on the property took a count on the array for it,
    /// the largest cost of a method call on a map-held function).
    private var keyBase: UnsafePointer<Value>?, valueBase: UnsafePointer<Value>?, keyCount = 0

    /// The session whose cycle collector may track this map (0: none); tracked once it holds a
    /// list, map or function (see ListRef).
    let gcOwner: Int32
    var gcTracked = false
    public init() {
        gcOwner = CycleCollector.currentOwner
        index = MapIndex()
    }
    private init(index: MapIndex) {
        gcOwner = CycleCollector.currentOwner
        self.index = index
    }
    deinit {
        if gcTracked { CycleCollector.unregister(self, owner: gcOwner) }
        Teardown.take(&keys)
        Teardown.take(&values)
    }

    /// Empties the map (the cycle collector breaks cycles this way).
    func removeAll() {
        Teardown.take(&keys)
        Teardown.take(&values)
        keys = []
        values = []
        index.removeAll()
    }

    /// A shallow copy: the same keys and values in a new map.
    public func copy() -> MapRef {
        let m = MapRef(index: index.copy())
        m.keys = keys; m.values = values
        if m.gcOwner != 0, values.contains(where: \.canLeadBack) {
            m.gcTracked = true
            CycleCollector.register(m, owner: m.gcOwner)
        }
        return m
    }

    public var count: Int { keys.count }

    public func get(_ k: Value) throws -> Value? {
        let form = try MapKeyForm(k)
        return withUnsafePointer(to: form) { get($0, form.hash) }
    }

    /// `get` of a key whose form and hash are known (a constant key, hashed once).
    @inline(__always) func get(_ form: UnsafePointer<MapKeyForm>, _ hash: UInt64) -> Value? {
        item(form, hash)?.pointee
    }

    /// `get`, the item copied into `dst` (a register of the VM) without a copy in between.
    @inline(__always) func copyItem(_ form: UnsafePointer<MapKeyForm>, _ hash: UInt64, into dst: UnsafeMutablePointer<Value>) -> Bool {
        guard let p = item(form, hash) else { return false }
        Raw.assign(dst, p)
        return true
    }

    /// Where the value of a key is, read through the arrays' base addresses (valid until the next
    /// change of the map).
    @inline(__always) private func item(_ form: UnsafePointer<MapKeyForm>, _ hash: UInt64) -> UnsafePointer<Value>? {
        guard let keyBase, let valueBase, let i = index.find(form, hash, UnsafeBufferPointer(start: keyBase, count: keyCount)) else { return nil }
        return valueBase + i
    }

    public func set(_ k: Value, _ v: Value) throws {
        let form = try MapKeyForm(k), hash = form.hash
        if !gcTracked, gcOwner != 0, v.canLeadBack {
            gcTracked = true
            CycleCollector.register(self, owner: gcOwner)
        }
        if let i = withUnsafePointer(to: form, { f in keys.withUnsafeBufferPointer { index.find(f, hash, $0) } }) { values[i] = v; return }
        try checkSize(keys.count + 1, "the map")
        index.append(hash)
        keys.append(k)
        values.append(v)
    }

    @discardableResult
    public func remove(_ k: Value) throws -> Value? {
        let form = try MapKeyForm(k)
        guard let i = withUnsafePointer(to: form, { f in keys.withUnsafeBufferPointer { index.find(f, form.hash, $0) } }) else { return nil }
        let v = values.remove(at: i)
        keys.remove(at: i)
        index.remove(at: i)
        return v
    }
}

/// A script function: its compiled code and the frame it closes over.
public final class Function {
    let proto: FunctionProto
    let env: Frame?
    let gcOwner: Int32
    /// The proto's, read by the VM's calls without a reference count.
    unowned(unsafe) let unownedProto: FunctionProto
    let paramCount: Int
    init(proto: FunctionProto, env: Frame?) {
        self.proto = proto
        unownedProto = proto
        paramCount = proto.params.count
        self.env = env
        gcOwner = CycleCollector.currentOwner
        if gcOwner != 0 {
            CycleCollector.register(self, owner: gcOwner)
            env?.track(owner: gcOwner)
        }
    }
    deinit { if gcOwner != 0 { CycleCollector.unregister(self, owner: gcOwner) } }
    public var name: String { proto.name }
    /// How messages name it: its name, or `fn(a, b)` for an anonymous function.
    public var label: String { proto.name == "anonymous function" ? "fn(\(proto.params.joined(separator: ", ")))" : proto.name }
}

/// A caught error as a script value: `e.message`, `e.line`.
public final class ErrorValue {
    public let message: String
    public let line: Int
    init(message: String, line: Int) { self.message = message; self.line = line }
}

extension Value {
    public var typeName: String {
        switch self {
        case .nil_: return "nil"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "string"
        case .list: return "list"
        case .map: return "map"
        case .range: return "range"
        case .function, .builtin: return "function"
        case .host(let o): return o.hostType.name
        case .error: return "error"
        }
    }

    /// The value's truth in a condition: nil, false, 0, empty strings and collections are false;
    /// a host object decides for itself, and may refuse (a tensor of several elements has no
    /// single truth, as in PyTorch).
    public func truth() throws -> Bool {
        switch self {
        case .nil_: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .float(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l): return !l.items.isEmpty
        case .map(let m): return m.count > 0
        case .range(let lo, let hi, _): return hi > lo
        case .host(let o): return try o.hostType.truthy?(o) ?? true
        default: return true
        }
    }

    /// The number as a Double, for ints and floats.
    public var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .float(let d): return d
        default: return nil
        }
    }

    /// str(): strings as they are; everything else as `repr`.
    public var str: String {
        switch self {
        case .string(let s): return s
        case .error(let e): return e.message
        case .int(let i): return String(i)  // (numbers without repr's budget: str(i) in a loop)
        case .float(let d): return formatFloat(d)
        default: return repr
        }
    }

    /// repr(): strings in double quotes; lists and maps show their elements by repr. A list or
    /// map inside itself, or nested deeper than 100 levels, shows as `[...]` / `{...}`.
    /// Past `maxItems` characters the text stops with "…": a list of many references to one
    /// long string must not build gigabytes to print.
    public var repr: String {
        var seen = Set<ObjectIdentifier>()
        var budget = maxItems
        return repr(&seen, &budget)
    }

    private func repr(_ seen: inout Set<ObjectIdentifier>, _ budget: inout Int) -> String {
        guard budget > 0 else { return "…" }
        // Every value shown costs at least one: a list shared at every level ([x, x] nested 60
        // deep) stops at the budget instead of growing without end.
        budget -= 1
        // Ctrl-C cuts the text short; the script then stops at its next step.
        if budget & 0xFFFF == 0, InterruptFlag.current?.isSet == true { budget = 0 }
        switch self {
        case .list(let l):
            guard seen.count < 100, seen.insert(ObjectIdentifier(l)).inserted else { return "[...]" }
            defer { seen.remove(ObjectIdentifier(l)) }
            var parts: [String] = []
            for v in l.items {
                guard budget > 0 else { parts.append("…"); break }
                parts.append(v.repr(&seen, &budget))
            }
            return "[" + parts.joined(separator: ", ") + "]"
        case .map(let m):
            guard seen.count < 100, seen.insert(ObjectIdentifier(m)).inserted else { return "{...}" }
            defer { seen.remove(ObjectIdentifier(m)) }
            var parts: [String] = []
            for (k, v) in zip(m.keys, m.values) {
                guard budget > 0 else { parts.append("…"); break }
                parts.append(k.repr(&seen, &budget) + ": " + v.repr(&seen, &budget))
            }
            return "{" + parts.joined(separator: ", ") + "}"
        default:
            var s = shallowRepr
            if s.utf8.count > budget { s = String(s.prefix(budget)) + "…" }
            budget -= s.utf8.count + 2
            return s
        }
    }

    private var shallowRepr: String {
        switch self {
        case .nil_: return "nil"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .float(let d): return formatFloat(d)
        case .string(let s): return quote(s)
        case .list, .map: return repr
        case .range(let lo, let hi, let inclusive): return inclusive ? "\(lo)...\(hi - 1)" : "\(lo)..<\(hi)"
        case .function(let f): return "<fn \(f.name)>"
        case .builtin(let b): return "<builtin \(b.name)>"
        case .host(let o): return o.hostType.describe?(o) ?? "<\(o.hostType.name)>"
        case .error(let e): return "<error: \(e.message)>"
        }
    }
}

/// Shortest round-trip digits, with ".0" on whole numbers: 1.0, 0.1, 1e-05, 1e+20, inf, nan.
func formatFloat(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d > 0 ? "inf" : "-inf" }
    let s = "\(d)"  // Swift: "1.0", "0.1", "1e-05", "1e+20"
    return s
}

func quote(_ s: String) -> String {
    var out = "\""
    for c in s {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default: out.append(c)
        }
    }
    return out + "\""
}

/// Structural equality: numbers by value (1 == 1.0), strings, lists and maps element by element,
/// objects by identity. Iterative, so that lists nested to any depth compare; a pair of containers
/// already being compared counts as equal (so a list inside itself equals its copy).
func valuesEqual(_ a: Value, _ b: Value) -> Bool {
    var work: [(Value, Value)] = [(a, b)]
    var seen = Set<[ObjectIdentifier]>()
    while let (x, y) = work.popLast() {
        switch (x, y) {
        case let (.list(p), .list(q)):
            guard p !== q else { continue }
            guard p.items.count == q.items.count else { return false }
            guard seen.insert([ObjectIdentifier(p), ObjectIdentifier(q)]).inserted else { continue }
            for (u, v) in zip(p.items, q.items) { work.append((u, v)) }
        case let (.map(p), .map(q)):
            guard p !== q else { continue }
            guard p.count == q.count else { return false }
            guard seen.insert([ObjectIdentifier(p), ObjectIdentifier(q)]).inserted else { continue }
            for (k, v) in zip(p.keys, p.values) {
                guard let w = try? q.get(k) else { return false }
                work.append((v, w))
            }
        default:
            guard scalarsEqual(x, y) else { return false }
        }
    }
    return true
}

/// Equality of two values that are not both lists or both maps.
private func scalarsEqual(_ a: Value, _ b: Value) -> Bool {
    switch (a, b) {
    case (.nil_, .nil_): return true
    case let (.bool(x), .bool(y)): return x == y
    case let (.int(x), .int(y)): return x == y
    case let (.int(x), .float(y)): return Double(x) == y
    case let (.float(x), .int(y)): return x == Double(y)
    case let (.float(x), .float(y)): return x == y
    case let (.string(x), .string(y)): return x == y
    case let (.range(a0, a1, _), .range(b0, b1, _)): return a0 == b0 && a1 == b1
    case let (.function(x), .function(y)): return x === y
    case let (.builtin(x), .builtin(y)): return x === y
    case let (.host(x), .host(y)): return x === y
    case let (.error(x), .error(y)): return x === y
    default: return false
    }
}

/// The most items one operation may build (a string repeated, a range turned into a list):
/// beyond it the script gets an error instead of exhausting memory.
let maxItems = 50_000_000

func checkSize(_ n: Int, _ what: String) throws {
    guard n <= maxItems else { throw ScriptError("\(what) would have \(n) items; the limit is \(maxItems)") }
}
