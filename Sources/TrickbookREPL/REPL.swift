import Foundation
import TrickbookFiles
import TrickbookScript

/// The interactive loop: cells typed or taken from a loaded notebook, commands after ':'.
public final class REPL {
    private var session: Session
    private let makeSession: () -> Session
    private var notebook: Notebook?
    private var nextCell = 1
    /// What was typed and ran, for :save.
    private var typed: [String] = []

    public init(makeSession: @escaping () -> Session) {
        self.makeSession = makeSession
        session = makeSession()
    }

    // MARK: Interactive (a terminal)

    /// Runs until Ctrl-D or :quit. Returns the exit status.
    public func runInteractive(historyPath: String?) -> Int32 {
        guard let editor = LineEditor(historyPath: historyPath) else {
            session.errorOutput("error: cannot start the line editor")
            return 1
        }
        installInterruptHandler(session.interp.interrupt)
        activeCompleter = { [unowned self] before in self.completions(before) }
        session.output("trickbook \u{2014} the Bag of Tricks, cell by cell. :help for a tour, Ctrl-D to leave.")
        var pending: [String] = []
        while true {
            // A Ctrl-C from before this prompt (at the last one, or after a cell ended) is spent.
            session.interp.interrupt.clear()
            switch editor.readLine(prompt: pending.isEmpty ? "tb> " : "... ") {
            case .endOfInput:
                session.output("")
                return 0
            case .interrupted:
                session.output("^C")
                pending = []
            case .line(let line):
                if pending.isEmpty && line.trimmingCharacters(in: .whitespaces).hasPrefix(":") {
                    editor.remember(line)
                    if !command(line.trimmingCharacters(in: .whitespaces)) { return 0 }
                    continue
                }
                pending.append(line)
                let source = pending.joined(separator: "\n")
                if case .incomplete = session.interp.check(source, name: "<repl>") { continue }
                pending = []
                editor.remember(source)
                run(source, name: "<repl>")
            }
        }
    }

    /// Runs a whole script read from a pipe, without prompts. Returns the exit status.
    public func runPiped(_ source: String) -> Int32 {
        session.evaluate(source, name: "<stdin>", echo: false) ? 0 : 1
    }

    /// Runs a cell typed at the prompt. The interrupt flag was cleared when the prompt began, so a
    /// Ctrl-C pressed right after Enter, before the cell starts, still stops it.
    private func run(_ source: String, name: String) {
        if session.evaluate(source, name: name) { typed.append(source) }
    }

    // MARK: Completion

    /// Completions for the text before the cursor: members after a dot, keyword arguments inside a
    /// call, else names and keywords.
    func completions(_ before: String) -> [String] {
        let word = String(before.reversed().prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }.reversed())
        let interp = session.interp
        if let dot = word.lastIndex(of: ".") {
            let object = String(word[..<dot]), prefix = String(word[word.index(after: dot)...])
            guard !object.isEmpty, !object.contains("."), let v = interp.global(object) else { return [] }
            return interp.memberNames(of: v).filter { $0.hasPrefix(prefix) }
        }
        var names = interp.completions(prefix: word)
        if let callee = enclosingCall(before), let f = interp.global(callee) {
            names = interp.parameterNames(of: f).map { $0 + ":" }.filter { $0.hasPrefix(word) } + names
        }
        return names
    }

    /// The name of the innermost call whose '(' is still open before the cursor.
    private func enclosingCall(_ text: String) -> String? {
        var depth = 0
        var chars = Array(text)
        while let c = chars.popLast() {
            if c == ")" { depth += 1 } else if c == "(" {
                if depth == 0 {
                    let name = String(chars.reversed().prefix { $0.isLetter || $0.isNumber || $0 == "_" }.reversed())
                    return name.isEmpty ? nil : name
                }
                depth -= 1
            }
        }
        return nil
    }

    // MARK: Commands

    static let tour = """
    Type code and press Enter; an open brace, bracket or string continues on the next line.
    The value of an expression is shown. Ctrl-C stops a running cell (variables keep their values)
    or clears the line; Ctrl-D leaves.
      :help [name]    this tour, or a builtin, function, type or method (:help opt.groups)
      :vars           the variables you have made
      :load FILE      load a notebook (.tb with '# %%' cells) and list its cells
      :cells          the loaded notebook's cells; '>' marks the next
      :next           run the next cell
      :run N | A-B | all   run cells of the loaded notebook
      :show N         print a cell
      :time EXPR      run and time
      :reset          forget every variable
      :save FILE      save what you typed as a notebook
      :quit           leave
    """

    /// Handles a ':' command; false means quit.
    func command(_ line: String) -> Bool {
        let parts = line.dropFirst().split(separator: " ", maxSplits: 1).map(String.init)
        let name = parts.first ?? "", arg = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        switch name {
        case "quit", "q", "exit": return false
        case "help", "h":
            if arg.isEmpty {
                session.output(REPL.tour)
            } else if let v = session.interp.global(arg) {
                session.output(session.interp.help(for: v))
            } else if session.interp.hostTypes.contains(where: { $0.name == arg }) {
                session.output(session.interp.help(for: .string(arg)))
            } else if arg.contains("."), arg.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }),
                      let v = try? session.interp.run(arg, name: ":help") {
                // A dotted name such as model.summary (never a call): its bound method answers.
                session.output(session.interp.help(for: v))
            } else {
                session.errorOutput("error: unknown name '\(arg)'")
            }
        case "vars":
            let vars = session.interp.userGlobals
            session.output(vars.isEmpty ? "(no variables yet)" : vars.map { "\($0.0): \($0.1.typeName) = \(summarize($0.1, limit: 6))" }.joined(separator: "\n"))
        case "load":
            do {
                let nb = try Notebook.load(arg)
                notebook = nb
                nextCell = 1
                session.output("\(nb.name): \(nb.cells.count) cells")
                listCells()
            } catch { session.errorOutput("error: \(error)") }
        case "cells":
            if notebook == nil { session.errorOutput("error: no notebook loaded: use :load FILE") } else { listCells() }
        case "next":
            guard let nb = notebook else { session.errorOutput("error: no notebook loaded: use :load FILE"); break }
            guard nextCell <= nb.cells.count else { session.output("(the notebook has no more cells)"); break }
            runNotebookCells([nextCell], of: nb)
        case "run":
            guard let nb = notebook else { session.errorOutput("error: no notebook loaded: use :load FILE"); break }
            do { runNotebookCells(try nb.select(arg.isEmpty ? "all" : arg), of: nb) } catch { session.errorOutput("error: \(error)") }
        case "show":
            guard let nb = notebook else { session.errorOutput("error: no notebook loaded: use :load FILE"); break }
            guard let n = Int(arg), n >= 1, n <= nb.cells.count else { session.errorOutput("error: :show needs a cell number from 1 to \(nb.cells.count)"); break }
            let cell = nb.cells[n - 1]
            session.output(session.header(cell) + "\n" + cell.source)
        case "time":
            let start = DispatchTime.now().uptimeNanoseconds
            run(arg, name: "<repl>")
            session.output(String(format: "time: %.3f s", Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        case "reset":
            session = makeSession()
            installInterruptHandler(session.interp.interrupt)
            typed = []
            session.output("(every variable forgotten)")
        case "save":
            guard !arg.isEmpty else { session.errorOutput("error: :save needs a file name"); break }
            let text = typed.enumerated().map { "# %% typed \($0.offset + 1)\n\($0.element)\n" }.joined(separator: "\n")
            do {
                try writeAtomically(text, to: arg)
                session.output("saved \(typed.count) cells to \(arg)")
            } catch { session.errorOutput("error: cannot write \(arg): \(error)") }
        default:
            session.errorOutput("error: unknown command ':\(name)' (:help lists them)")
        }
        return true
    }

    private func listCells() {
        guard let nb = notebook else { return }
        for c in nb.cells {
            let mark = c.number == nextCell ? ">" : " "
            session.output("\(mark) [\(c.number)] \(c.isMarkdown ? "(markdown) " : "")\(c.title.isEmpty ? "(untitled)" : c.title)")
        }
    }

    private func runNotebookCells(_ numbers: [Int], of nb: Notebook) {
        for n in numbers {
            let ok = session.runCell(nb.cells[n - 1], of: nb)
            nextCell = n + 1
            if !ok { break }
        }
        session.interp.interrupt.clear()
    }
}

/// Writes a file by way of a temporary name and a rename, so that a failure never leaves half a file.
func writeAtomically(_ text: String, to path: String) throws {
    let tmp = temporaryPath(for: path)
    try text.write(toFile: tmp, atomically: false, encoding: .utf8)
    guard rename(tmp, path) == 0 else {
        unlink(tmp)
        throw NotebookError(String(cString: strerror(errno)))
    }
}
