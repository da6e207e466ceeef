import Foundation
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
    /// Whether a parameter collects the rest (`*rest`): then arguments are matched one by one.
    let hasVariadic: Bool
    public let signature: String
    public let doc: String
    public let example: String?
    let body: (Args) throws -> Value
    /// For a builtin of one value: its result for the arguments it handles without the general
    /// binding (nil: not handled, the body runs). Compiled calls with one argument try it first,
    /// which saves the argument array and `Args` (string building with `str(i)`: 2,445 machine
    /// instructions a part before, 1,862 with it).
    let fast: ((Value) -> Value?)?
    /// For a method bound to its receiver.
    let receiver: Value?
    /// Each parameter's position, for the bindings' by-name accessors.
    let slots: [String: Int]

    /// Set by a test to record which parameters each builtin's implementation reads by name: with
    /// every example run, each parameter of a signature must have been read (and a name that is
    /// not in the signature is an error when read), so a row and its function cannot disagree.
    public nonisolated(unsafe) static var recordingReads = false
    private static let readsLock = NSLock()
    private var reads: Set<String> = []
    /// For a method bound to a receiver: the declared method, which keeps the record.
    private var origin: Builtin?
    func noteRead(_ name: String) {
        let keeper = origin ?? self
        Builtin.readsLock.lock()
        keeper.reads.insert(name)
        Builtin.readsLock.unlock()
    }
    /// The parameters read by name so far (while recording).
    public var namesRead: Set<String> {
        Builtin.readsLock.lock()
        defer { Builtin.readsLock.unlock() }
        return reads
    }

    /// `signature` is written as in the language: `"resnet(depth, variant = \"a\", zero_gamma = false)"`;
    /// defaults are literals (numbers, strings, true, false, nil); `*rest` collects the remaining
    /// positional arguments as a list. A malformed signature is a programming error in the binding
    /// and is reported by `Interpreter.register` at start-up, not to the script user.
    public init(_ signature: String, doc: String, example: String? = nil, fast: ((Value) -> Value?)? = nil, _ body: @escaping (Args) throws -> Value) throws {
        let (name, params) = try Builtin.parsed(signature)
        guard fast == nil || (params.count == 1 && !params[0].variadic) else {
            throw ScriptError("builtin signature '\(signature)' has a one-value fast path but not one parameter")
        }
        self.fast = fast
        self.name = name
        self.params = params
        hasVariadic = params.contains(where: \.variadic)
        self.signature = signature
        self.doc = doc
        self.example = example
        self.body = body
        self.receiver = nil
        var slots: [String: Int] = [:]
        for (i, p) in params.enumerated() {
            guard slots[p.name] == nil else { throw ScriptError("builtin signature '\(signature)' names '\(p.name)' twice") }
            slots[p.name] = i
        }
        self.slots = slots
    }

    /// Signatures already parsed in this process: every session registers the same few hundred
    /// rows, and lexing them again made a fresh session cost more than most scripts it runs.
    private static let parsedLock = NSLock()
    private nonisolated(unsafe) static var parsedRows: [String: (String, [Param])] = [:]
    private static func parsed(_ signature: String) throws -> (String, [Param]) {
        parsedLock.lock()
        let known = parsedRows[signature]
        parsedLock.unlock()
        if let known { return known }
        let row = try parseSignature(signature)
        parsedLock.lock()
        parsedRows[signature] = row
        parsedLock.unlock()
        return row
    }

    private init(bound: Builtin, to receiver: Value) {
        name = bound.name; params = bound.params; hasVariadic = bound.hasVariadic; signature = bound.signature
        doc = bound.doc; example = bound.example; body = bound.body; slots = bound.slots; fast = nil
        self.receiver = receiver
        origin = bound.origin ?? bound
    }

    func bound(to receiver: Value) -> Builtin { Builtin(bound: self, to: receiver) }

    /// Matches positional and keyword arguments to the parameters, with uniform messages. A
    /// method can be given its receiver here instead of being bound to it first.
    func bind(_ positional: [Value], _ keywords: [(String, Value)], in interpreter: Interpreter, receiver given: Value? = nil) throws -> Args {
        if keywords.isEmpty, !hasVariadic, positional.count <= params.count {
            // Positional arguments only (most calls): they are the values, defaults after them.
            if positional.count == params.count {
                return Args(callee: self, values: positional, receiver: given ?? receiver, interpreter: interpreter)
            }
            var out = positional
            for p in params[positional.count...] {
                guard let d = p.defaultValue else { throw ScriptError("\(name)() missing argument '\(p.name)'") }
                out.append(d)
            }
            return Args(callee: self, values: out, receiver: given ?? receiver, interpreter: interpreter)
        }
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
        return Args(callee: self, values: out, receiver: given ?? receiver, interpreter: interpreter)
    }
}

/// One builtin as a library declares it: the signature as the user sees it, a one-line doc, an
/// example (help shows it; the tests run every one), and the Swift function that implements it.
public struct Row {
    public let signature: String
    public let doc: String
    public let example: String
    public let body: (Args) throws -> Value
    public init(_ signature: String, doc: String, example: String, _ body: @escaping (Args) throws -> Value) {
        self.signature = signature; self.doc = doc; self.example = example; self.body = body
    }
}

/// A library of builtins: a list of rows and the host types it brings (Lua's `luaL_Reg` tables,
/// LispKit's `declarations()`).
public protocol Library {
    static var rows: [Row] { get }
    static var types: [HostType] { get }
}

extension Interpreter {
    /// Registers every row and type of a library.
    public func load(_ library: Library.Type) {
        for r in library.rows { row(r.signature, r.doc, r.example, r.body) }
        for t in library.types { register(type: t) }
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

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// The flag of the session whose script runs on this thread: what a long builtin checks, so
    /// that Ctrl-C in one session does not stop another's.
    public static var current: InterruptFlag? {
        pthread_getspecific(key).map { Unmanaged<InterruptFlag>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Runs `body` with `flag` as this thread's current flag (the session holds it meanwhile).
    static func during<T>(_ flag: InterruptFlag, _ body: () throws -> T) rethrows -> T {
        let saved = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(flag).toOpaque())
        defer { pthread_setspecific(key, saved) }
        return try body()
    }
}
