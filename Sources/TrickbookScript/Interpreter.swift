import Foundation

/// One language session: its globals, builtins and modules. The REPL, the notebook runner and the
/// tests each make one; the bindings register host builtins on it.
public final class Interpreter {
    /// What every step touches, at a fixed address that nodes keep: reaching it needs no
    /// reference counting (reaching it through the interpreter object did, measurably).
    let state: UnsafeMutablePointer<RuntimeState>
    var globals: UnsafeMutablePointer<Value> { state.pointee.globals }
    var globalDefined: UnsafeMutablePointer<Bool> { state.pointee.defined }
    private var globalCapacity = 256
    var globalConst: [Bool] = []
    var globalNames: [String] = []
    private var globalSlots: [String: Int] = [:]

    /// Builtins in registration order, for help and completion.
    public private(set) var builtins: [Builtin] = []
    public private(set) var hostTypes: [HostType] = []
    var listMethods: [String: Builtin] = [:]
    var mapMethods: [String: Builtin] = [:]
    var stringMethods: [String: Builtin] = [:]

    /// Where `print` writes.
    public var output: (String) -> Void = { Swift.print($0) }
    /// Where rich output goes (charts, pictures, tables, progress bars): nil on a terminal.
    public var display: ((Display) -> Void)?
    /// Given the value of every expression statement written at a cell's top level, as it runs
    /// (IPython's `ast_node_interactivity = "all"`): a notebook shows each, not only the last.
    public var echo: ((Value) -> Void)?
    /// Set from any thread to stop the running script at its next loop iteration or call.
    public let interrupt: InterruptFlag
    /// The deepest chain of script calls before "recursion depth exceeded".
    public var maxDepth = 500
    /// Loop iterations plus calls a run may take (nil: no limit). For fuzzing and sandboxes.
    public var stepLimit: Int?
    /// Folders searched by `import` before the importing script's folder and TRICKBOOK_PATH.
    public var searchPath: [String]
    /// Modules built into the host ("train.tb" → source), found after `searchPath`: a folder given
    /// there (TRICKBOOK_STDLIB) takes precedence.
    public var builtinModules: [String: String] = [:]
    /// This session's number for the cycle collector.
    let gcOwner: Int32 = Interpreter.nextOwner()
    private var nextCollection = 10_000
    private var nextCollectionBytes = 256 << 20
    /// Bytes the host holds for values of this session (the bindings: tensors), for the cycle
    /// collector's trigger.
    public var hostBytes: (() -> Int)?
    private static let ownerLock = NSLock()
    nonisolated(unsafe) private static var lastOwner: Int32 = 0
    private static func nextOwner() -> Int32 {
        ownerLock.lock()
        defer { ownerLock.unlock() }
        lastOwner = lastOwner == Int32.max ? 1 : lastOwner + 1
        return lastOwner
    }

    /// Constants the core library defines (pi): not the user's, so `:vars` leaves them out.
    var predefined: Set<String> = []
    /// What the host keeps with this session (the bindings keep the run's random generator).
    public var hostState: AnyObject?
    /// A run's parameters (`trickbook run --set name=value`), read by `param(name, default)`; the
    /// names read so far, so that the runner can say which were given and never used.
    public var parameters: [String: Value] = [:]
    public internal(set) var parametersRead: Set<String> = []

    var depth: Int {
        get { state.pointee.depth }
        set { state.pointee.depth = newValue }
    }
    var returned: Value {
        get { state.pointee.returned }
        set { state.pointee.returned = newValue }
    }
    var lastValue: Value {
        get { state.pointee.lastValue }
        set { state.pointee.lastValue = newValue }
    }
    private var modules: Set<String> = []
    /// The registers of compiled functions (VM.swift).
    let vmStack = ValueStack()
    /// Whether functions are compiled to bytecode at their first call (else they run as trees).
    public var compilesFunctions = Interpreter.vmEnabled

    /// `interrupt`: another session's flag, to be stopped with it (a loader worker's session).
    public init(searchPath: [String] = [], interrupt: InterruptFlag = InterruptFlag()) {
        if !rawLayoutProbed, Raw.probe { rawLayoutProbed = true }
        self.searchPath = searchPath
        self.interrupt = interrupt
        state = .allocate(capacity: 1)
        state.initialize(to: RuntimeState(globals: .allocate(capacity: 256), defined: .allocate(capacity: 256), interrupt: interrupt.atomic))
        registerCoreLibrary()
    }

    // MARK: Globals

    func globalIndex(_ name: String) -> Int {
        if let i = globalSlots[name] { return i }
        let i = globalNames.count
        if i == globalCapacity {
            let newCapacity = globalCapacity * 2
            let g = UnsafeMutablePointer<Value>.allocate(capacity: newCapacity)
            g.moveInitialize(from: globals, count: i)
            globals.deallocate()
            state.pointee.globals = g
            let d = UnsafeMutablePointer<Bool>.allocate(capacity: newCapacity)
            d.moveInitialize(from: globalDefined, count: i)
            globalDefined.deallocate()
            state.pointee.defined = d
            globalCapacity = newCapacity
        }
        globalSlots[name] = i
        (globals + i).initialize(to: .nil_)
        (globalDefined + i).initialize(to: false)
        globalConst.append(false)
        globalNames.append(name)
        return i
    }

    var definedGlobalNames: [String] { globalNames.indices.filter { globalDefined[$0] }.map { globalNames[$0] } }

    deinit {
        // Syntax trees and values are freed by recursion on their depth: on the large stack too.
        let g = globals, n = globalNames.count
        _ = try? LargeStack.run {
            g.deinitialize(count: n)
        }
        CycleCollector.forget(owner: gcOwner)
        globals.deallocate()
        globalDefined.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// Defines (or redefines) a global, as a top-level `var` would.
    public func define(_ name: String, _ value: Value) {
        storeGlobal(globalIndex(name), value)
    }

    /// The value of a global, if it is defined.
    public func global(_ name: String) -> Value? {
        guard let i = globalSlots[name], globalDefined[i] else { return nil }
        return globals[i]
    }

    /// Names of defined globals and keywords starting with `prefix`, for completion.
    public func completions(prefix: String) -> [String] {
        (definedGlobalNames + Array(keywords)).filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// Member names of a value (methods and properties), for completion after a dot.
    public func memberNames(of v: Value) -> [String] {
        switch v {
        case .host(let o):
            let t = o.hostType
            return (Array(t.methods.keys) + Array(t.properties.keys) + (t.memberNames?(o) ?? [])).sorted()
        case .list: return listMethods.keys.sorted()
        case .map: return mapMethods.keys.sorted()
        case .string: return stringMethods.keys.sorted()
        case .error: return ["line", "message"]
        default: return []
        }
    }

    // MARK: Registration

    /// Adds a builtin function: one row, the only place a builtin is declared.
    public func register(_ b: Builtin) {
        builtins.append(b)
        define(b.name, .builtin(b))
    }

    /// Makes a host type known by name, for `help("tensor")` and the list of documented methods.
    public func register(type: HostType) {
        if !hostTypes.contains(where: { $0 === type }) { hostTypes.append(type) }
    }

    /// Every builtin and method with its qualified name ("len", "list.append", "tensor.sum"):
    /// what help documents, and what the tests check for a doc and a working example.
    public var documented: [(String, Builtin)] {
        var all = builtins.map { ($0.name, $0) }
        for (owner, table) in [("list", listMethods), ("map", mapMethods), ("string", stringMethods)] {
            all += table.keys.sorted().compactMap { k in table[k].map { ("\(owner).\(k)", $0) } }
        }
        for t in hostTypes {
            if let c = t.call { all.append(("\(t.name)()", c)) }
            all += t.methods.keys.sorted().compactMap { k in t.methods[k].map { ("\(t.name).\(k)", $0) } }
        }
        return all
    }

    /// Adds methods of lists, maps or strings.
    func registerMethod(_ type: String, _ b: Builtin) {
        switch type {
        case "list": listMethods[b.name] = b
        case "map": mapMethods[b.name] = b
        default: stringMethods[b.name] = b
        }
    }

    // MARK: Running

    /// The outcome of checking input without running it.
    public enum Check { case complete, incomplete, error(ScriptError) }

    /// Whether `source` parses: complete, incomplete (the REPL should read another line), or wrong.
    public func check(_ source: String, name: String = "<input>") -> Check {
        do {
            try LargeStack.run {
                var c = try Compiler(ctx: self, file: SourceFile(name: name, text: source))
                _ = try c.compileChunk()
            }
            return .complete
        } catch let e as ScriptError {
            return e.incomplete ? .incomplete : .error(e)
        } catch {
            return .error(ScriptError("\(error)"))
        }
    }

    /// Compiles and runs `source`. Returns the value of the last statement when it is an
    /// expression (for the REPL to echo), else nil. A failure leaves every global that was
    /// assigned before it as it is, and the session usable.
    @discardableResult
    public func run(_ source: String, name: String, lineOffset: Int = 0) throws -> Value? {
        try LargeStack.run {
            try entered {
                defer { collectCyclesIfGrown() }
                return try runHere(source, name: name, lineOffset: lineOffset)
            }
        }
    }

    /// Runs `body` as this session on this thread: what it allocates is this session's to collect,
    /// and the engine's long operations check this session's interrupt flag.
    private func entered<T>(_ body: () throws -> T) rethrows -> T {
        try CycleCollector.owning(gcOwner) { try InterruptFlag.during(interrupt, body) }
    }

    /// Frees cycles after a cell when the session's tracked objects have doubled since the last
    /// collection (at least 10,000): the cost stays proportional to what the cells allocate.
    /// The host's memory (`hostBytes`) doubling since then (at least 256 MB) triggers one too: a
    /// few cycles can hold gigabytes of tensors.
    private func collectCyclesIfGrown() {
        let n = CycleCollector.count(owner: gcOwner), bytes = hostBytes?() ?? 0
        guard n >= nextCollection || bytes >= nextCollectionBytes else { return }
        CycleCollector.collect(owner: gcOwner)
        nextCollection = Swift.max(10_000, 2 * CycleCollector.count(owner: gcOwner))
        nextCollectionBytes = Swift.max(256 << 20, 2 * (hostBytes?() ?? 0))
    }

    /// Frees the session's cycles now; returns how many objects were cleared (the `gc()` builtin).
    func collectCycles() -> Int { CycleCollector.collect(owner: gcOwner) }

    private func runHere(_ source: String, name: String, lineOffset: Int) throws -> Value? {
        let file = SourceFile(name: name, text: source, lineOffset: lineOffset)
        var compiler = try Compiler(ctx: self, file: file)
        let (body, slots) = try compiler.compileChunk()
        for (index, isConst) in compiler.declaredGlobals { globalConst[index] = isConst }
        // The cell's tree is freed after it runs: functions it defined keep their own compiled
        // bodies (a FunctionProto each), so a long session does not keep every cell.
        depth = 0
        lastValue = .nil_
        state.pointee.budget = stepLimit ?? Int.max
        if compilesFunctions, Raw.ok, let chunk = BytecodeCompiler.compileTopLevel(body, slots: slots) {
            try executeTopLevel(chunk, file: file)
        } else {
            let frame = Frame.make(count: slots, parent: nil)
            for s in body {
                _ = try s.exec(frame)
                if s is ExprStmt { echo?(lastValue) }
            }
        }
        if body.last is ExprStmt { return lastValue }
        return nil
    }

    /// Runs a file from disk.
    @discardableResult
    public func runFile(_ path: String) throws -> Value? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ScriptError("cannot read '\(path)'")
        }
        return try run(text, name: path)
    }

    // MARK: Calls

    /// Calls a script function or builtin from Swift (a host binding calling back into a script).
    public func callValue(_ f: Value, _ args: [Value]) throws -> Value {
        try LargeStack.run { try entered { try callHere(f, args) } }
    }

    /// `callValue` counted as a run of its own: the step limit starts afresh (a call from a
    /// thread where no run of this session is under way, such as a loader worker's).
    public func callAsRun(_ f: Value, _ args: [Value]) throws -> Value {
        state.pointee.budget = stepLimit ?? Int.max
        return try callValue(f, args)
    }

    /// Runs `body` on a thread whose stack is deep enough for the language (see `LargeStack`), so
    /// that the calls it makes into sessions run in place; `body` runs on the caller's thread if
    /// that thread cannot be made.
    public static func onDeepStack(_ body: () -> Void) {
        do { try LargeStack.run(body) } catch { body() }
    }

    private func callHere(_ f: Value, _ args: [Value]) throws -> Value {
        switch f {
        case .function(let fn):
            let frame = try bindFrame(fn, args, [])
            return try run(fn, frame, callSite: nil)
        case .builtin(let b): return try b.body(try b.bind(args, [], in: self))
        case .host(let o):
            guard let c = o.hostType.call else { throw ScriptError("\(o.hostType.name) is not callable") }
            let b = c.bound(to: f)
            return try b.body(try b.bind(args, [], in: self))
        default: throw ScriptError("\(f.typeName) is not callable")
        }
    }

    func call(_ c: Value, _ positional: [Value], _ keywords: [(String, Value)], site: Node) throws -> Value {
        switch c {
        case .function(let fn):
            if keywords.isEmpty, positional.count == fn.proto.params.count, let chunk = bytecode(fn.proto) {
                return try callCompiled(fn, chunk, site: site) { w in for (k, v) in positional.enumerated() { w[k] = v } }
            }
            let frame: Frame
            do { frame = try bindFrame(fn, positional, keywords) } catch { throw site.locate(error) }
            return try run(fn, frame, callSite: site)
        case .builtin(let b):
            if state.pointee.mustStop() { throw site.stopError() }
            do { return try b.body(try b.bind(positional, keywords, in: self)) } catch { throw site.locate(error) }
        case .host(let o) where o.hostType.call != nil:
            if state.pointee.mustStop() { throw site.stopError() }
            guard let b = o.hostType.call?.bound(to: c) else { throw site.fail("\(c.typeName) is not callable") }
            do { return try b.body(try b.bind(positional, keywords, in: self)) } catch { throw site.locate(error) }
        default:
            throw site.fail("\(c.typeName) is not callable")
        }
    }

    /// Puts arguments into a new frame by position and keyword; missing ones take their defaults.
    private func bindFrame(_ fn: Function, _ positional: [Value], _ keywords: [(String, Value)]) throws -> Frame {
        let p = fn.proto, n = p.params.count
        guard positional.count <= n else {
            throw ScriptError("\(p.name)() takes \(n) argument\(n == 1 ? "" : "s"), got \(positional.count)")
        }
        let frame = Frame.make(count: p.slotCount, parent: fn.env)
        var given = [Bool](repeating: false, count: n)
        for (i, v) in positional.enumerated() { frame.slots[i] = v; given[i] = true }
        for (k, v) in keywords {
            guard let i = p.params.firstIndex(of: k) else {
                throw ScriptError("\(p.name)() has no parameter '\(k)'\(didYouMean(k, p.params))")
            }
            guard !given[i] else { throw ScriptError("\(p.name)() got argument '\(k)' twice") }
            frame.slots[i] = v
            given[i] = true
        }
        for i in 0..<n where !given[i] {
            guard let d = p.defaults[i] else { throw ScriptError("\(p.name)() missing argument '\(p.params[i])'") }
            // A default runs inside the call it belongs to: it counts toward the depth limit, so
            // `fn f(a = f()) {...}` stops with an error instead of recursing without end.
            guard depth < maxDepth else { throw ScriptError("recursion depth exceeded (\(maxDepth)) in the default of '\(p.params[i])' of \(p.name)()") }
            depth += 1
            defer { depth -= 1 }
            frame.slots[i] = try d.eval(frame)
        }
        return frame
    }

    /// Runs a function body in its frame, adding this call to the trace of an error that passes.
    func run(_ fn: Function, _ frame: Frame, callSite: Node?) throws -> Value {
        let st = state
        if st.pointee.mustStop() {
            if st.pointee.budget < 0 { throw StepLimitExceeded() }
            throw ScriptInterrupted(file: callSite?.file, pos: callSite?.pos)
        }
        guard st.pointee.depth < maxDepth else {
            throw callSite?.fail("recursion depth exceeded (\(maxDepth))") ?? ScriptError("recursion depth exceeded (\(maxDepth))")
        }
        st.pointee.depth += 1
        defer { st.pointee.depth -= 1 }
        do {
            if let chunk = bytecode(fn.proto) { return try execute(fn, chunk, arguments: frame) }
            if case .returnValue = try runStatements(fn.proto.body, frame) {
                let v = st.pointee.returned
                st.pointee.returned = .nil_
                return v
            }
            return .nil_
        } catch var e as ScriptError {
            if let site = callSite { e.trace.append((fn.name, site.file, site.pos)) }
            throw e
        }
    }

    // MARK: Members

    func member(_ o: Value, _ name: String) throws -> Value {
        func missing(_ type: String, _ candidates: [String]) -> ScriptError {
            ScriptError("\(type) has no member '\(name)'\(didYouMean(name, candidates))")
        }
        switch o {
        case .host(let h):
            let t = h.hostType
            if let m = t.methods[name] { return .builtin(m.bound(to: o)) }
            if let p = t.properties[name] { return try p.get(h) }
            if let dynamic = t.member, let v = try dynamic(h, name) { return v }
            throw missing(t.name, Array(t.methods.keys) + Array(t.properties.keys) + (t.memberNames?(h) ?? []))
        case .list:
            guard let m = listMethods[name] else { throw missing("list", Array(listMethods.keys)) }
            return .builtin(m.bound(to: o))
        case .map(let mv):
            // `m.key` reads a string key (records such as a training history's rows); methods otherwise.
            if let v = try mv.get(.string(name)) { return v }
            guard let m = mapMethods[name] else { throw missing("map", Array(mapMethods.keys) + mv.keys.compactMap { if case .string(let k) = $0 { return k }; return nil }) }
            return .builtin(m.bound(to: o))
        case .string:
            guard let m = stringMethods[name] else { throw missing("string", Array(stringMethods.keys)) }
            return .builtin(m.bound(to: o))
        case .error(let e):
            switch name {
            case "message": return .string(e.message)
            case "line": return .int(e.line)
            default: throw missing("error", ["message", "line"])
            }
        default:
            throw missing(o.typeName, [])
        }
    }

    // MARK: Import

    func importModule(_ name: String, from importer: SourceFile) throws {
        let fm = FileManager.default
        var dirs = searchPath
        // The importing file's folder ("." for names without one, such as "<repl>"). Not
        // NSString.deletingLastPathComponent: it crashes on a name without a slash here.
        dirs.append(importer.name.lastIndex(of: "/").map { String(importer.name[..<$0]) } ?? ".")
        if let extra = ProcessInfo.processInfo.environment["TRICKBOOK_PATH"] {
            dirs += extra.split(separator: ":").map(String.init)
        }
        let fileName = name.hasSuffix(".tb") ? name : name + ".tb"
        for (k, dir) in dirs.enumerated() {
            // The built-in modules come right after the search path's folders.
            if k == searchPath.count, let text = builtinModules[fileName] {
                return try load(text, path: "<stdlib>/" + fileName)
            }
            let path = ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent(fileName)
            guard fm.fileExists(atPath: path) else { continue }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ScriptError("cannot read module '\(path)'") }
            return try load(text, path: path)
        }
        var searched = dirs.map { $0.isEmpty ? "." : $0 }
        if !builtinModules.isEmpty { searched.insert("the built-in stdlib", at: searchPath.count) }
        throw ScriptError("module '\(name)' not found (searched: \(searched.joined(separator: ", ")))")
    }

    /// Runs a module's text once per session (`path` names it, in errors and for "once").
    private func load(_ text: String, path: String) throws {
        let key = (path as NSString).standardizingPath
        guard !modules.contains(key) else { return }
        modules.insert(key)
        let savedDepth = depth, savedLast = lastValue
        defer { depth = savedDepth; lastValue = savedLast }
        let file = SourceFile(name: path, text: text)
        var compiler = try Compiler(ctx: self, file: file)
        let (body, slots) = try compiler.compileChunk()
        for (index, isConst) in compiler.declaredGlobals { globalConst[index] = isConst }
        let frame = Frame.make(count: slots, parent: nil)
        for s in body { _ = try s.exec(frame) }
    }

    // MARK: Help

    /// The help text for a value: a builtin's signature, doc and example; a function's parameters.
    public func help(for v: Value) -> String {
        switch v {
        case .builtin(let b):
            var s = "\(b.signature)\n    \(b.doc)"
            if let ex = b.example { s += "\n    example: \(ex)" }
            return s
        case .function(let f):
            let p = f.proto
            var s = "\(f.name)(\(p.params.joined(separator: ", ")))    (defined at \(p.file.name):\(p.pos.line + p.file.lineOffset))"
            for line in docComment(p) { s += "\n    " + line }
            return s
        case .host(let o):
            let names = o.hostType.memberNames?(o) ?? []
            return typeHelp(o.hostType) + (names.isEmpty ? "" : "\n  its members: " + names.joined(separator: ", "))
        case .list: return "list methods: " + listMethods.keys.sorted().joined(separator: ", ")
        case .map: return "map methods: " + mapMethods.keys.sorted().joined(separator: ", ")
        case .string(let name):
            if let g = global(name), case .string = g {} else if let g = global(name) { return help(for: g) }
            if let t = hostTypes.first(where: { $0.name == name }) { return typeHelp(t) }
            return "string methods: " + stringMethods.keys.sorted().joined(separator: ", ")
        default: return "\(v.typeName) value \(v.repr)"
        }
    }
}

extension Interpreter {
    /// The `#` comment lines right above a function's `fn` line: its documentation.
    func docComment(_ p: FunctionProto) -> [String] {
        var out: [String] = []
        var k = p.pos.line - 2
        while k >= 0, k < p.file.lines.count {
            let line = p.file.lines[k].trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("#"), !line.hasPrefix("# %%") else { break }
            out.append(String(line.dropFirst()).trimmingCharacters(in: .whitespaces))
            k -= 1
        }
        return out.reversed()
    }

    /// A host type's doc, properties and methods; help(obj.method) shows a method's example.
    func typeHelp(_ t: HostType) -> String {
        var s = "\(t.name): \(t.doc)"
        if let c = t.call { s += "\n  called: \(c.signature)  \(c.doc)" }
        if !t.properties.isEmpty { s += "\n  properties: " + t.properties.keys.sorted().joined(separator: ", ") }
        for name in t.methods.keys.sorted() { if let m = t.methods[name] { s += "\n  .\(m.signature)  \(m.doc)" } }
        if !t.methods.isEmpty { s += "\n  (help(x.method) shows one with an example)" }
        return s
    }

    /// Defined globals that are not builtins: what `:vars` lists.
    public var userGlobals: [(String, Value)] {
        globalNames.indices.compactMap { i -> (String, Value)? in
            guard globalDefined[i], !predefined.contains(globalNames[i]) else { return nil }
            if case .builtin(let b) = globals[i], b.name == globalNames[i] { return nil }
            return (globalNames[i], globals[i])
        }
    }

    /// The parameter names of a function or builtin, for completing keyword arguments.
    public func parameterNames(of v: Value) -> [String] {
        switch v {
        case .function(let f): return f.proto.params
        case .builtin(let b): return b.params.filter { !$0.variadic }.map(\.name)
        default: return []
        }
    }
}
