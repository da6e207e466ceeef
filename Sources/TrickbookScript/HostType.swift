/// An object of a host type: a tensor, a model, a data loader. A class rather than a protocol:
/// a value holds it in one word (a protocol's existential takes two, which made every value 24
/// bytes instead of 16). Each host class overrides `hostType`.
open class HostObject {
    public init() {}
    open var hostType: HostType { HostObject.untyped }
    static let untyped = HostType("object", doc: "A host object.")
}

/// A host object whose type is known statically, so that arguments can be checked by type
/// (`a.host("model", ModelBox.self)`).
public protocol TypedHost: HostObject {
    static var type: HostType { get }
}


/// What a host type offers the language, declared once: methods, properties, operators,
/// indexing, calling, iteration and how it prints.
public final class HostType {
    public let name: String
    public let doc: String
    public var methods: [String: Builtin] = [:]
    public var properties: [String: (get: (HostObject) throws -> Value, set: ((HostObject, Value) throws -> Void)?)] = [:]
    /// `op` is one of + - * / // % ** @ == != < <= > >= (and "neg"); return nil when the operand
    /// types are not supported, and the language reports them uniformly.
    public var binary: ((String, Value, Value) throws -> Value?)?
    public var index: ((HostObject, Value) throws -> Value)?
    public var setIndex: ((HostObject, Value, Value) throws -> Void)?
    /// `o[start:end:step]`; each part is nil when omitted.
    public var slice: ((HostObject, Value, Value, Value) throws -> Value)?
    /// `o[i, a:b, ...]` in any form; when set, it also serves `o[i]` and `o[a:b]`.
    public var getSubscript: ((HostObject, [Subscript]) throws -> Value)?
    /// `o[i, a:b, ...] = v` in any form; when set, it also serves `o[i] = v`.
    public var setSubscript: ((HostObject, [Subscript], Value) throws -> Void)?
    /// `o.name` when no method or property has that name: members that depend on the object (a
    /// model's submodules and parameters), with the names for completion and messages.
    public var member: ((HostObject, String) throws -> Value?)?
    public var memberNames: ((HostObject) -> [String])?
    /// `o(args)`: objects that are called like functions (a model on a batch, a loss on logits).
    public var call: Builtin?
    /// `next(o)`: the next item of an object that is its own iterator (a loader, stepped by hand).
    public var next: ((HostObject) throws -> Value)?
    /// A fresh iterator: each call of the returned closure gives the next item, nil at the end.
    public var iterate: ((HostObject) throws -> () throws -> Value?)?
    public var length: ((HostObject) throws -> Int)?
    public var describe: ((HostObject) -> String)?
    /// How the object shows under a notebook cell when it is printed alone or is the cell's value
    /// (a table as a table); without a notebook, or when nil, its text form is printed.
    public var rich: ((HostObject) -> Display?)?
    /// The object's truth in a condition; throw when it has none.
    public var truthy: ((HostObject) throws -> Bool)?

    public init(_ name: String, doc: String) {
        self.name = name
        self.doc = doc
    }

    public func method(_ builtin: Builtin) { methods[builtin.name] = builtin }

    /// Declares a method of objects of type T: the body gets the receiver already typed. The
    /// example is what `help(obj.method)` shows; the tests run every one.
    public func method<T: HostObject>(_ type: T.Type, _ signature: String, doc: String, example: String, _ body: @escaping (T, Args) throws -> Value) {
        guard let b = typed(type, signature, doc, example, body) else { return }
        method(b)
    }

    /// Declares what calling an object of type T does; `signature` names the call's parameters
    /// ("model(x)").
    public func callable<T: HostObject>(_ type: T.Type, _ signature: String, doc: String, example: String, _ body: @escaping (T, Args) throws -> Value) {
        call = typed(type, signature, doc, example, body)
    }

    private func typed<T: HostObject>(_ type: T.Type, _ signature: String, _ doc: String, _ example: String, _ body: @escaping (T, Args) throws -> Value) -> Builtin? {
        do {
            return try Builtin(signature, doc: doc, example: example) { a in
                guard case .host(let o)? = a.receiver, let receiver = o as? T else { throw ScriptError("\(signature) needs a \(self.name) to call it on") }
                return try body(receiver, a)
            }
        } catch {
            Interpreter.registrationErrors.append(signature)
            return nil
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

    /// `o[k]` for objects of type T.
    public func index<T: HostObject>(_ type: T.Type, _ body: @escaping (T, Value) throws -> Value) {
        index = { o, k in try body(try self.receiver(o, as: T.self), k) }
    }

    /// `o[k] = v` for objects of type T.
    public func setIndex<T: HostObject>(_ type: T.Type, _ body: @escaping (T, Value, Value) throws -> Void) {
        setIndex = { o, k, v in try body(try self.receiver(o, as: T.self), k, v) }
    }

    /// `o[items]` and `o[items] = v` for objects of type T.
    public func subscripts<T: HostObject>(_ type: T.Type, get: @escaping (T, [Subscript]) throws -> Value, set: ((T, [Subscript], Value) throws -> Void)? = nil) {
        getSubscript = { o, s in try get(try self.receiver(o, as: T.self), s) }
        setSubscript = set.map { set in { o, s, v in try set(try self.receiver(o, as: T.self), s, v) } }
    }

    /// `len(o)`.
    public func length<T: HostObject>(_ type: T.Type, _ body: @escaping (T) throws -> Int) {
        length = { o in try body(try self.receiver(o, as: T.self)) }
    }

    /// `for x in o`.
    public func iterate<T: HostObject>(_ type: T.Type, _ body: @escaping (T) throws -> () throws -> Value?) {
        iterate = { o in try body(try self.receiver(o, as: T.self)) }
    }

    /// Members of objects of type T found by name at run time.
    public func members<T: HostObject>(_ type: T.Type, names: @escaping (T) -> [String], get: @escaping (T, String) throws -> Value?) {
        member = { o, name in try get(try self.receiver(o, as: T.self), name) }
        memberNames = { o in (o as? T).map(names) ?? [] }
    }

    /// `next(o)`.
    public func next<T: HostObject>(_ type: T.Type, _ body: @escaping (T) throws -> Value) {
        next = { o in try body(try self.receiver(o, as: T.self)) }
    }
}
