// A function copied to another session: how a transform written in the language runs on the
// loader's worker threads, each with a session of its own (a session runs on one thread at a
// time). What is copied is the function's text, compiled again there, and the names it uses from
// outside itself, the globals and the variables of the functions around it that it captured:
// functions (copied the same way, in turn), and numbers, strings, bools, nil, and lists and maps
// of those (copied as values: a copy changed in a worker does not change the session's). Anything
// else (a model, a tensor, a list of lists: state the session and the workers would share) cannot
// be copied, and the reason names it.

/// A function and what it uses, ready to be installed in other sessions (`install`).
public struct Standalone: Sendable {
    /// A function's text, placed so that its lines and columns are those of the original: errors
    /// raised in a copy point into the user's file.
    struct Definition: Sendable {
        let name: String
        let file: String
        let lineOffset: Int
        let text: String
    }
    let definitions: [Definition]
    let values: [(String, PlainValue)]
    /// The global that holds the function itself in a copy.
    let entry: String

    /// Defines the function and what it uses in `session` (which has the same builtins);
    /// returns the function.
    public func install(into session: Interpreter) throws -> Value {
        for (name, v) in values { session.define(name, v.make()) }
        for d in definitions {
            guard let f = try session.run(d.text, name: d.file, lineOffset: d.lineOffset) else {
                throw ScriptError("internal error: the copy of \(d.name) made no function")
            }
            session.define(d.name, f)
        }
        guard let f = session.global(entry) else { throw ScriptError("internal error: the copy has no \(entry)") }
        return f
    }
}

/// A value copied between sessions: a number, string, bool or nil, or a list or map of those.
/// What it holds never changes (lists and maps are made anew for each session).
struct PlainValue: @unchecked Sendable {
    private let scalar: Value?
    private let items: [Value], keys: [Value]
    private let isMap: Bool

    init?(_ v: Value) {
        func flat(_ v: Value) -> Bool {
            switch v {
            case .nil_, .bool, .int, .float, .string: return true
            default: return false
            }
        }
        switch v {
        case .list(let l) where l.items.allSatisfy(flat): (scalar, items, keys, isMap) = (nil, l.items, [], false)
        case .map(let m) where m.values.allSatisfy(flat): (scalar, items, keys, isMap) = (nil, m.values, m.keys, true)
        case .range: (scalar, items, keys, isMap) = (v, [], [], false)
        default:
            guard flat(v) else { return nil }
            (scalar, items, keys, isMap) = (v, [], [], false)
        }
    }

    func make() -> Value {
        if let scalar { return scalar }
        if !isMap { return .list(ListRef(items)) }
        let m = MapRef()
        for (k, v) in zip(keys, items) { try? m.set(k, v) }
        return .map(m)
    }
}

extension Interpreter {
    /// The function `f` as a `Standalone`, or an error saying why it cannot be copied (`what`
    /// names it in the message: "the transform").
    public func standalone(_ f: Value, what: String) throws -> Standalone {
        guard case .function(let fn) = f else { throw ScriptError("\(what) is a \(f.typeName), not a function written in the language") }
        let globals = Dictionary(userGlobals, uniquingKeysWith: { a, _ in a })
        let entry = globals[fn.proto.name].flatMap { v -> String? in
            if case .function(let g) = v, g === fn { return fn.proto.name }
            return nil
        } ?? "__copied_function"
        var definitions: [Standalone.Definition] = [], values: [(String, PlainValue)] = []
        // What each name stands for in the copy, and the functions still to copy: a worklist,
        // not recursion (functions may call each other).
        var bound: [String: Value] = [entry: f]
        var pending: [(String, Function)] = [(entry, fn)]
        func bind(_ name: String, _ v: Value, in function: String) throws {
            if let old = bound[name] {
                guard valuesEqual(old, v) else {
                    throw ScriptError("\(what) cannot run on loader workers: '\(name)' means two things in \(function) and in what it uses (rename one, or use workers = 0)")
                }
                return
            }
            bound[name] = v
            if case .function(let h) = v {
                pending.append((name, h))
            } else if let p = PlainValue(v) {
                values.append((name, p))
            } else {
                throw ScriptError("\(what) cannot run on loader workers: \(function) uses '\(name)' (a \(v.typeName)), which the workers would share with the session (give it as a number, string or list of those, or use workers = 0)")
            }
        }
        while let (name, g) = pending.popLast() {
            let p = g.proto, label = name == entry ? "it" : "the function \(name)"
            guard let (from, to) = p.text else { throw ScriptError("\(what) cannot run on loader workers: \(label) has no text to copy") }
            let text = functionText(p.file, from, to)
            definitions.append(.init(name: name, file: p.file.name, lineOffset: p.file.lineOffset + from.line - 1, text: text))
            for c in p.captures {
                guard let env = g.env else { continue }
                try bind(c.name, env.ancestor(c.depth - 1).slots[c.slot], in: label)
            }
            let captured = Set(p.captures.map(\.name))
            for used in try globalsUsed(by: text) where !captured.contains(used) {
                guard let v = globals[used] else { continue }  // a builtin, or not defined (an error when it runs, as here)
                try bind(used, v, in: label)
            }
        }
        return Standalone(definitions: definitions, values: values, entry: entry)
    }

    /// `fn` and the function's text from its "(" on, after spaces that put that "(" in its
    /// original column (it starts a line of its own in the copy, whose line offset is its line's).
    private func functionText(_ file: SourceFile, _ from: SourcePos, _ to: SourcePos) -> String {
        var lines: [Substring] = []
        for l in from.line...max(from.line, to.line) where l >= 1 && l <= file.lines.count {
            var line = file.lines[l - 1]
            if l == to.line { line = line.prefix(max(0, to.column - 1)) }
            if l == from.line { line = line.dropFirst(max(0, from.column - 1)) }
            lines.append(line)
        }
        return String(repeating: " ", count: max(0, from.column - 3)) + "fn" + lines.joined(separator: "\n")
    }

    /// The global names a function's text refers to: compiled in a scratch session, whose
    /// globals are then the names the text reads or writes outside itself.
    private func globalsUsed(by text: String) throws -> [String] {
        let scratch = Interpreter()
        var compiler = try Compiler(ctx: scratch, file: SourceFile(name: "<copy>", text: text))
        _ = try compiler.compileChunk()
        return scratch.globalNames
    }
}
