import Foundation
import TrickbookScript

/// What the REPL and the notebook runner share: an interpreter set up for notebooks, running
/// cells and reporting what they return.
public final class Session {
    public let interp: Interpreter
    /// Where results and prose go (errors go to `errorOutput`).
    public var output: (String) -> Void
    public var errorOutput: (String) -> Void
    /// Where rich output goes (charts, pictures, tables, progress bars): a notebook page or report.
    /// Nil on a terminal, where builtins print their text form and write their files.
    public var display: ((Display) -> Void)? {
        get { interp.display }
        set { interp.display = newValue }
    }

    /// How an evaluation ended. An error's place is the line and column within the evaluated text
    /// (nil when the error is in an imported module or has no place).
    public enum Outcome: Equatable { case ok, error(line: Int?, column: Int?), interrupted }
    public private(set) var lastOutcome: Outcome = .ok

    /// The state a notebook's "undo" puts back, with the bytes it holds. The REPL knows nothing of
    /// models: the host that made the session (the bindings) says how to take one.
    public struct Snapshot {
        public let bytes: Int
        public let restore: () throws -> Void
        public init(bytes: Int, restore: @escaping () throws -> Void) {
            self.bytes = bytes
            self.restore = restore
        }
    }
    /// Takes one holding at most the given bytes, or nil when it would hold more.
    public var takeSnapshot: ((Int) -> Snapshot?)?

    /// `setup` registers the host builtins (the bindings); `quick` and `seed` become globals.
    public init(stdlib: [String], quick: Bool, seed: Int, setup: (Interpreter) -> Void) {
        interp = Interpreter(searchPath: stdlib)
        output = { Swift.print($0) }
        errorOutput = { FileHandle.standardError.write(($0 + "\n").data(using: .utf8) ?? Data()) }
        interp.output = { [unowned self] in self.output($0) }
        interp.define("quick", .bool(quick))
        interp.define("seed", .int(seed))
        setup(interp)
    }

    /// Runs source text; echoes the value of every expression statement at its top level (unless
    /// nil), as it runs, as IPython does with `ast_node_interactivity = "all"`: a cell that shows
    /// two tensors shows both. Returns whether it succeeded; an error is reported, never thrown,
    /// and the session stays usable.
    @discardableResult
    public func evaluate(_ source: String, name: String, lineOffset: Int = 0, echo: Bool = true) -> Bool {
        interp.echo = echo ? { [unowned self] v in self.show(v) } : nil
        defer { interp.echo = nil }
        do {
            _ = try interp.run(source, name: name, lineOffset: lineOffset)
            lastOutcome = .ok
            return true
        } catch let e as ScriptError {
            let here = e.file?.name == name && e.file?.lineOffset == lineOffset
            lastOutcome = .error(line: here ? e.pos?.line : nil, column: here ? e.pos?.column : nil)
            errorOutput(e.report)
        } catch let e as ScriptInterrupted {
            lastOutcome = .interrupted
            errorOutput("interrupted: stopped \(e.description.replacingOccurrences(of: "interrupted ", with: "")); every variable keeps its value")
        } catch {
            lastOutcome = .error(line: nil, column: nil)
            errorOutput("error: \(error)")
        }
        return false
    }

    /// A value echoed: drawn under a notebook cell when it has a rich form, else its text.
    private func show(_ v: Value) {
        if case .nil_ = v { return }
        if !interp.showRich(v) { output(summarize(v)) }
    }

    /// Runs one notebook cell: markdown is shown, code is run with errors located in the file.
    @discardableResult
    public func runCell(_ cell: Notebook.Cell, of notebook: Notebook) -> Bool {
        output(header(cell))
        if cell.isMarkdown {
            output(cell.prose)
            return true
        }
        return evaluate(cell.source, name: notebook.name, lineOffset: cell.firstLine - 1)
    }

    public func header(_ cell: Notebook.Cell) -> String {
        let title = cell.title.isEmpty ? "" : " \(cell.title)"
        return "── [\(cell.number)]\(cell.isMarkdown ? " (markdown)" : "")\(title) " + String(repeating: "─", count: max(3, 60 - title.count))
    }
}

/// A readable one-line form of a value for echoing: long lists and maps abbreviated.
public func summarize(_ v: Value, limit: Int = 20) -> String {
    switch v {
    case .list(let l) where l.items.count > limit:
        let head = l.items.prefix(limit / 2).map(\.repr), tail = l.items.suffix(2).map(\.repr)
        return "[" + head.joined(separator: ", ") + ", …, " + tail.joined(separator: ", ") + "]  (\(l.items.count) items)"
    case .map(let m) where m.count > limit:
        let head = zip(m.keys, m.values).prefix(limit / 2).map { "\($0.repr): \($1.repr)" }
        return "{" + head.joined(separator: ", ") + ", …}  (\(m.count) entries)"
    default:
        let s = v.repr
        return s.count > 2000 ? String(s.prefix(2000)) + "…  (\(s.count) characters)" : s
    }
}
