import ArgumentParser
import Foundation
import TrickbookBindings
import TrickbookREPL
import TrickbookScript
import TrickbookTensor

@main
struct Trickbook: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trickbook",
        abstract: "A notebook-style environment for the \"Bag of Tricks for Image Classification with CNNs\".",
        discussion: "Without a subcommand: the REPL on a terminal, or the script read from a pipe (echo 'print(1 + 2)' | trickbook).",
        subcommands: [Run.self, Check.self, Demo.self, Bench.self, Doctor.self])

    func run() throws {
        let repl = REPL { makeSession(quick: false, seed: 0) }
        if isatty(0) == 1 {
            let path = ProcessInfo.processInfo.environment["TRICKBOOK_HISTORY"] ?? (NSHomeDirectory() + "/.trickbook_history")
            throw ExitCode(repl.runInteractive(historyPath: path))
        }
        let source = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        throw ExitCode(repl.runPiped(source))
    }
}

/// A session with the project's stdlib on the import path, `quick` and `seed` defined, and the
/// random generator seeded.
func makeSession(quick: Bool, seed: Int) -> Session {
    Random.seed(UInt64(truncatingIfNeeded: seed))
    return Session(stdlib: stdlibPaths(), quick: quick, seed: seed) { Bindings.register(into: $0, seed: UInt64(truncatingIfNeeded: seed)) }
}

/// The project's stdlib/: TRICKBOOK_STDLIB, or found by walking up from the executable.
func stdlibPaths() -> [String] {
    if let s = ProcessInfo.processInfo.environment["TRICKBOOK_STDLIB"] { return [s] }
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<6 {
        let candidate = dir.appendingPathComponent("stdlib")
        if FileManager.default.fileExists(atPath: candidate.path) { return [candidate.path] }
        dir = dir.deletingLastPathComponent()
    }
    return []
}

/// `trickbook run FILE`: runs a notebook's cells in order.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a notebook (or a script) cell by cell; '-' reads standard input.")

    @Argument(help: "The notebook file, or - for standard input.") var file: String
    @Option(help: "Which cells: N, A-B, a comma list, or all.") var cells: String = "all"
    @Flag(help: "Set the global 'quick' so that notebooks shrink their work.") var quick = false
    @Option(help: "Random seed (also the global 'seed').") var seed: Int = 0

    func run() throws {
        let notebook: Notebook, selection: [Int]
        do {
            notebook = try Notebook.load(file)
            selection = try notebook.select(cells)
        } catch {
            FileHandle.standardError.write("error: \(error)\n".data(using: .utf8) ?? Data())
            throw ExitCode(2)
        }
        let session = makeSession(quick: quick, seed: seed)
        for n in selection where !session.runCell(notebook.cells[n - 1], of: notebook) {
            throw ExitCode(1)
        }
    }
}

/// `trickbook check FILE`: parses every cell without running anything.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that a notebook parses, without running it.")

    @Argument(help: "The notebook file, or - for standard input.") var file: String

    func run() throws {
        let notebook: Notebook
        do { notebook = try Notebook.load(file) } catch {
            FileHandle.standardError.write("error: \(error)\n".data(using: .utf8) ?? Data())
            throw ExitCode(2)
        }
        let interp = Interpreter()
        var failed = false
        for cell in notebook.cells where !cell.isMarkdown {
            let file = SourceFile(name: notebook.name, text: cell.source, lineOffset: cell.firstLine - 1)
            if case .error(var e) = interp.check(cell.source, name: notebook.name) {
                e.file = file
                FileHandle.standardError.write((e.report + "\n").data(using: .utf8) ?? Data())
                failed = true
            } else if case .incomplete = interp.check(cell.source, name: notebook.name) {
                FileHandle.standardError.write("\(notebook.name):\(cell.firstLine): error: cell \(cell.number) ends in the middle of a statement\n".data(using: .utf8) ?? Data())
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
        print("\(notebook.name): \(notebook.cells.count) cells parse")
    }
}
