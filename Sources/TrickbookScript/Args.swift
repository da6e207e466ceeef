/// The arguments of one builtin call, one per parameter, read by name with checked accessors whose
/// messages all read "name(): argument 'p' must be …, got …".
///
/// A binding reads `a.int("depth")`, never a position: the names are the signature's. Reading a
/// name the signature does not declare is a bug in the binding; it is reported as such (and the
/// test that runs every builtin's example finds it).
///
/// An `Args` lives for one call: the builtin and the session are held by whoever called it, so
/// they are kept here without a count (two atomic operations on every builtin call). A binding
/// that keeps either beyond the call reads it into a property of its own, which counts it.
public struct Args {
    public unowned(unsafe) let callee: Builtin
    /// The values, one per parameter.
    public let values: [Value]
    /// The object a method was called on.
    public let receiver: Value?
    /// The session, for builtins that call back into scripts or print.
    public unowned(unsafe) let interpreter: Interpreter

    // MARK: By name (the bindings' accessors)

    /// The position of parameter `name`: found by comparing names when there are few (cheaper
    /// than hashing the name, on every read of every builtin call).
    func slot(_ name: String) throws -> Int {
        if Builtin.recordingReads { callee.noteRead(name) }
        let params = callee.params
        if params.count <= 8 {
            for i in params.indices where params[i].name == name { return i }
        }
        guard let i = callee.slots[name] else {
            throw ScriptError("internal error: the binding of \(callee.name)() reads '\(name)', which its signature \(callee.signature) does not declare")
        }
        return i
    }

    /// The argument given for parameter `name` (or its default).
    public func value(_ name: String) throws -> Value { values[try slot(name)] }

    /// An error about argument `name`: "name(): argument 'p' <message>".
    public func fail(_ name: String, _ message: String) -> ScriptError {
        ScriptError("\(callee.name)(): argument '\(name)' \(message)")
    }

    public func isNil(_ name: String) throws -> Bool { isNil(try slot(name)) }
    public func int(_ name: String) throws -> Int { try int(try slot(name)) }
    public func number(_ name: String) throws -> Double { try number(try slot(name)) }
    public func string(_ name: String) throws -> String { try string(try slot(name)) }
    public func bool(_ name: String) throws -> Bool { try bool(try slot(name)) }
    public func list(_ name: String) throws -> [Value] { try list(try slot(name)) }
    public func callable(_ name: String) throws -> Value { try callable(try slot(name)) }

    /// A count, size or index from the user: an int in `range`, or the uniform error. Every size
    /// that reaches arithmetic or an allocation is read this way, so none can overflow.
    public func int(_ name: String, in range: ClosedRange<Int>) throws -> Int {
        let n = try int(name)
        guard range.contains(n) else { throw fail(name, "must be from \(range.lowerBound) to \(range.upperBound), got \(n)") }
        return n
    }

    /// A finite number in `range` (a probability, a rate, a factor).
    public func number(_ name: String, in range: ClosedRange<Double>) throws -> Double {
        let d = try number(name)
        guard range.contains(d) else { throw fail(name, "must be from \(formatFloat(range.lowerBound)) to \(formatFloat(range.upperBound)), got \(formatFloat(d))") }
        return d
    }

    /// A number as the engine's Float (finite or not, as given).
    public func float(_ name: String) throws -> Float { Float(try number(name)) }

    /// nil when the argument is nil, else the checked value.
    public func intOrNil(_ name: String) throws -> Int? { try isNil(name) ? nil : try int(name) }
    public func floatOrNil(_ name: String) throws -> Float? { try isNil(name) ? nil : try float(name) }
    public func stringOrNil(_ name: String) throws -> String? { try isNil(name) ? nil : try string(name) }

    /// An int that must be one of `choices`.
    public func int(_ name: String, oneOf choices: [Int]) throws -> Int {
        let n = try int(name)
        guard choices.contains(n) else {
            throw fail(name, "must be one of \(choices.map(String.init).joined(separator: ", ")), got \(n)")
        }
        return n
    }

    /// A string that must be one of `choices`.
    public func string(_ name: String, oneOf choices: [String]) throws -> String {
        let s = try string(name)
        guard choices.contains(s) else {
            throw fail(name, "must be one of \(choices.map(quote).joined(separator: ", ")), got \(quote(s))")
        }
        return s
    }

    /// A string naming a case of an engine enum (a precision, a ResNet variant): the choices are
    /// the enum's cases, so the binding never repeats them.
    public func choice<E: CaseIterable & RawRepresentable>(_ name: String, _ type: E.Type) throws -> E where E.RawValue == String {
        let s = try string(name, oneOf: E.allCases.map(\.rawValue))
        guard let e = E(rawValue: s) else { throw fail(name, "has no case \(quote(s))") }
        return e
    }

    /// A host object of type T: "argument 'model' must be a model, got int".
    public func host<T: TypedHost>(_ name: String, _ type: T.Type) throws -> T {
        let v = try value(name)
        guard case .host(let o as T) = v else { throw fail(name, "must be \(article(T.type.name)) \(T.type.name), got \(v.typeName)") }
        return o
    }

    /// nil when the argument is nil, else a host object of type T.
    public func hostOrNil<T: TypedHost>(_ name: String, _ type: T.Type) throws -> T? {
        try isNil(name) ? nil : try host(name, type)
    }

    /// The method's receiver as T.
    public func receiver<T: TypedHost>(_ type: T.Type) throws -> T {
        guard case .host(let o as T)? = receiver else { throw ScriptError("\(callee.name)() needs \(article(T.type.name)) \(T.type.name) to call it on") }
        return o
    }

    // MARK: By position (the core library's accessors)

    subscript(_ i: Int) -> Value { values[i] }

    func fail(_ i: Int, _ message: String) -> ScriptError { fail(callee.params[i].name, message) }

    func isNil(_ i: Int) -> Bool { if case .nil_ = values[i] { return true }; return false }

    func int(_ i: Int) throws -> Int {
        switch values[i] {
        case .int(let n): return n
        case .float(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: throw fail(i, "must be an int, got \(values[i].typeName)")
        }
    }

    func number(_ i: Int) throws -> Double {
        guard let d = values[i].number else { throw fail(i, "must be a number, got \(values[i].typeName)") }
        return d
    }

    func string(_ i: Int) throws -> String {
        guard case .string(let s) = values[i] else { throw fail(i, "must be a string, got \(values[i].typeName)") }
        return s
    }

    func bool(_ i: Int) throws -> Bool {
        guard case .bool(let b) = values[i] else { throw fail(i, "must be true or false, got \(values[i].typeName)") }
        return b
    }

    func callable(_ i: Int) throws -> Value {
        switch values[i] {
        case .function, .builtin: return values[i]
        case .host(let o) where o.hostType.call != nil: return values[i]
        default: throw fail(i, "must be a function, got \(values[i].typeName)")
        }
    }

    func list(_ i: Int) throws -> [Value] {
        switch values[i] {
        case .list(let l): return l.items
        case .range(let lo, let hi, _):
            let (n, o) = hi.subtractingReportingOverflow(lo)
            try checkSize(o ? Int.max : n, "the range as a list")
            return (lo..<max(lo, hi)).map { .int($0) }
        default: throw fail(i, "must be a list, got \(values[i].typeName)")
        }
    }

    /// An int that must be one of `choices`.
    func int(_ i: Int, oneOf choices: [Int]) throws -> Int { try int(callee.params[i].name, oneOf: choices) }
}

/// "a model", "an optimizer".
public func article(_ noun: String) -> String { "aeiou".contains(noun.prefix(1)) ? "an" : "a" }
