import Atomics

// The embedding API: how Swift code gives the language builtins and host objects.
// A builtin is one row: its signature as the user sees it, a one-line doc, an example, and the
// Swift closure. `help(name)` and completion read the same rows.

/// One parameter of a builtin: a name, an optional default, or `*name` for the rest.
public struct Param {
    public let name: String
    public let defaultValue: Value?
    public let variadic: Bool
}

/// A function implemented in Swift.
public final class Builtin {
    public let name: String
    public let params: [Param]
    public let signature: String
    public let doc: String
    public let example: String?
    let body: (Args) throws -> Value
    /// For a method bound to its receiver.
    let receiver: Value?

    /// `signature` is written as in the language: `"resnet(depth, variant = \"a\", zero_gamma = false)"`;
    /// defaults are literals (numbers, strings, true, false, nil); `*rest` collects the remaining
    /// positional arguments as a list. A malformed signature is a programming error in the binding
    /// and is reported by `Interpreter.register` at start-up, not to the script user.
    public init(_ signature: String, doc: String, example: String? = nil, _ body: @escaping (Args) throws -> Value) throws {
        let (name, params) = try parseSignature(signature)
        self.name = name
        self.params = params
        self.signature = signature
        self.doc = doc
        self.example = example
        self.body = body
        self.receiver = nil
    }

    private init(bound: Builtin, to receiver: Value) {
        name = bound.name; params = bound.params; signature = bound.signature
        doc = bound.doc; example = bound.example; body = bound.body
        self.receiver = receiver
    }

    func bound(to receiver: Value) -> Builtin { Builtin(bound: self, to: receiver) }

    /// Matches positional and keyword arguments to the parameters, with uniform messages.
    func bind(_ positional: [Value], _ keywords: [(String, Value)]) throws -> Args {
        var values = [Value?](repeating: nil, count: params.count)
        let variadicIndex = params.firstIndex { $0.variadic }
        let fixed = variadicIndex ?? params.count
        if positional.count > fixed && variadicIndex == nil {
            throw ScriptError("\(name)() takes \(params.count) argument\(params.count == 1 ? "" : "s"), got \(positional.count)")
        }
        for (i, v) in positional.prefix(fixed).enumerated() { values[i] = v }
        if let vi = variadicIndex { values[vi] = .list(ListRef(Array(positional.dropFirst(fixed)))) }
        for (k, v) in keywords {
            guard let i = params.firstIndex(where: { $0.name == k && !$0.variadic }) else {
                throw ScriptError("\(name)() has no parameter '\(k)'\(didYouMean(k, params.map(\.name)))")
            }
            guard values[i] == nil else { throw ScriptError("\(name)() got argument '\(k)' twice") }
            values[i] = v
        }
        var out: [Value] = []
        out.reserveCapacity(params.count)
        for (i, p) in params.enumerated() {
            if let v = values[i] { out.append(v) } else if let d = p.defaultValue { out.append(d) } else {
                throw ScriptError("\(name)() missing argument '\(p.name)'")
            }
        }
        return Args(callee: self, values: out, receiver: receiver)
    }
}

/// The arguments of one builtin call, one per parameter, with checked accessors whose messages
/// all read "name(): argument 'p' must be …, got …".
public struct Args {
    public let callee: Builtin
    public let values: [Value]
    /// The object a method was called on.
    public let receiver: Value?

    public subscript(_ i: Int) -> Value { values[i] }

    public func index(_ name: String) -> Int { callee.params.firstIndex { $0.name == name } ?? 0 }
    public func value(_ name: String) -> Value { values[index(name)] }

    /// An error about argument `i`: "name(): argument 'p' <message>".
    public func fail(_ i: Int, _ message: String) -> ScriptError {
        ScriptError("\(callee.name)(): argument '\(callee.params[i].name)' \(message)")
    }

    public func isNil(_ i: Int) -> Bool { if case .nil_ = values[i] { return true }; return false }

    public func int(_ i: Int) throws -> Int {
        switch values[i] {
        case .int(let n): return n
        case .float(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: throw fail(i, "must be an int, got \(values[i].typeName)")
        }
    }

    public func number(_ i: Int) throws -> Double {
        guard let d = values[i].number else { throw fail(i, "must be a number, got \(values[i].typeName)") }
        return d
    }

    public func string(_ i: Int) throws -> String {
        guard case .string(let s) = values[i] else { throw fail(i, "must be a string, got \(values[i].typeName)") }
        return s
    }

    public func bool(_ i: Int) throws -> Bool {
        guard case .bool(let b) = values[i] else { throw fail(i, "must be true or false, got \(values[i].typeName)") }
        return b
    }

    public func list(_ i: Int) throws -> [Value] {
        switch values[i] {
        case .list(let l): return l.items
        case .range(let lo, let hi, _):
            let (n, o) = hi.subtractingReportingOverflow(lo)
            try checkSize(o ? Int.max : n, "the range as a list")
            return (lo..<max(lo, hi)).map { .int($0) }
        default: throw fail(i, "must be a list, got \(values[i].typeName)")
        }
    }

    public func host<T: HostObject>(_ i: Int, as type: T.Type, _ what: String) throws -> T {
        guard case .host(let o) = values[i], let t = o as? T else { throw fail(i, "must be \(what), got \(values[i].typeName)") }
        return t
    }

    /// An int that must be one of `choices`.
    public func int(_ i: Int, oneOf choices: [Int]) throws -> Int {
        let n = try int(i)
        guard choices.contains(n) else {
            throw fail(i, "must be one of \(choices.map(String.init).joined(separator: ", ")), got \(n)")
        }
        return n
    }

    /// A string that must be one of `choices`.
    public func string(_ i: Int, oneOf choices: [String]) throws -> String {
        let s = try string(i)
        guard choices.contains(s) else {
            throw fail(i, "must be one of \(choices.map(quote).joined(separator: ", ")), got \(quote(s))")
        }
        return s
    }
}

/// An object of a host type: a tensor, a model, a data loader.
public protocol HostObject: AnyObject {
    var hostType: HostType { get }
}

/// What a host type offers the language, declared once: methods, properties, operators,
/// indexing, iteration and how it prints.
public final class HostType {
    public let name: String
    public let doc: String
    public var methods: [String: Builtin] = [:]
    public var properties: [String: (get: (HostObject) throws -> Value, set: ((HostObject, Value) throws -> Void)?)] = [:]
    /// `op` is one of + - * / // % ** @ == < <= > >= (and "neg"); return nil when the operand
    /// types are not supported, and the language reports them uniformly.
    public var binary: ((String, Value, Value) throws -> Value?)?
    public var index: ((HostObject, Value) throws -> Value)?
    public var setIndex: ((HostObject, Value, Value) throws -> Void)?
    /// `o[start:end:step]`; each part is nil when omitted.
    public var slice: ((HostObject, Value, Value, Value) throws -> Value)?
    /// A fresh iterator: each call of the returned closure gives the next item, nil at the end.
    public var iterate: ((HostObject) throws -> () throws -> Value?)?
    public var length: ((HostObject) throws -> Int)?
    public var describe: ((HostObject) -> String)?
    public var truthy: ((HostObject) -> Bool)?

    public init(_ name: String, doc: String) {
        self.name = name
        self.doc = doc
    }

    public func method(_ builtin: Builtin) { methods[builtin.name] = builtin }

    /// Declares a method of objects of type T: the body gets the receiver already typed. The
    /// example is what `help(obj.method)` shows; the tests run every one.
    public func method<T: HostObject>(_ type: T.Type, _ signature: String, doc: String, example: String, _ body: @escaping (T, Args) throws -> Value) {
        do {
            method(try Builtin(signature, doc: doc, example: example) { a in
                guard case .host(let o)? = a.receiver, let receiver = o as? T else { throw ScriptError("\(signature) needs a \(self.name) to call it on") }
                return try body(receiver, a)
            })
        } catch {
            Interpreter.registrationErrors.append(signature)
        }
    }

    public func property(_ name: String, get: @escaping (HostObject) throws -> Value, set: ((HostObject, Value) throws -> Void)? = nil) {
        properties[name] = (get, set)
    }

    // The typed forms: each closure gets its receiver as T. The language only passes a host
    // type's closures objects of that type, so a mismatch is a bug in a binding; it is reported
    // as an error rather than trapping in a cast.

    /// The receiver as T, or an error naming the type expected.
    public func receiver<T: HostObject>(_ o: HostObject, as type: T.Type) throws -> T {
        guard let r = o as? T else { throw ScriptError("a \(o.hostType.name) reached a \(name) binding") }
        return r
    }

    /// A property of objects of type T, read-only unless `set` is given.
    public func property<T: HostObject>(_ type: T.Type, _ name: String, get: @escaping (T) throws -> Value, set: ((T, Value) throws -> Void)? = nil) {
        properties[name] = ({ o in try get(try self.receiver(o, as: T.self)) },
                            set.map { set in { o, v in try set(try self.receiver(o, as: T.self), v) } })
    }

    /// How objects of type T print.
    public func describe<T: HostObject>(_ type: T.Type, _ body: @escaping (T) -> String) {
        describe = { o in (o as? T).map(body) ?? self.name }
    }

    /// `o[k]`, `len(o)` and `for x in o` for objects of type T.
    public func index<T: HostObject>(_ type: T.Type, _ body: @escaping (T, Value) throws -> Value) {
        index = { o, k in try body(try self.receiver(o, as: T.self), k) }
    }

    public func length<T: HostObject>(_ type: T.Type, _ body: @escaping (T) throws -> Int) {
        length = { o in try body(try self.receiver(o, as: T.self)) }
    }

    public func iterate<T: HostObject>(_ type: T.Type, _ body: @escaping (T) throws -> () throws -> Value?) {
        iterate = { o in try body(try self.receiver(o, as: T.self)) }
    }
}

/// Set from another thread (the REPL's SIGINT handler) to stop a running script at its next loop
/// back-edge or call.
public final class InterruptFlag: @unchecked Sendable {
    let atomic = UnsafeAtomic<Bool>.create(false)
    public init() {}
    deinit { atomic.destroy() }
    public func set() { atomic.store(true, ordering: .relaxed) }
    public func clear() { atomic.store(false, ordering: .relaxed) }
    @inline(__always) public var isSet: Bool { atomic.load(ordering: .relaxed) }
}
