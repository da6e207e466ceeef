import ArgumentParser
import Foundation
import TrickbookAssets
import TrickbookBindings
import TrickbookNotebook
import TrickbookREPL
import TrickbookScript
import TrickbookTensor

@main
struct Trickbook: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trickbook",
        abstract: "A notebook-style environment for the \"Bag of Tricks for Image Classification with CNNs\".",
        discussion: "Without a subcommand: the REPL on a terminal, or the script read from a pipe (echo 'print(1 + 2)' | trickbook).",
        version: trickbookVersion,
        subcommands: [Run.self, NotebookCommand.self, Check.self, Disasm.self, Demo.self, Bench.self, Doctor.self])

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

/// A session with the stdlib importable, `quick` and `seed` defined, and the random generator seeded.
func makeSession(quick: Bool, seed: Int) -> Session {
    Random.seed(UInt64(truncatingIfNeeded: seed))
    let session = Session(stdlib: stdlibPaths(), quick: quick, seed: seed) {
        $0.builtinModules = Assets.stdlib
        Bindings.register(into: $0, seed: UInt64(truncatingIfNeeded: seed))
    }
    session.takeSnapshot = { [unowned session] limit in
        Bindings.snapshot(of: session.interp, limit: limit).map { Session.Snapshot(bytes: $0.bytes, restore: $0.restore) }
    }
    return session
}

/// A folder that takes precedence over the stdlib built into the binary: TRICKBOOK_STDLIB.
func stdlibPaths() -> [String] {
    ProcessInfo.processInfo.environment["TRICKBOOK_STDLIB"].map { [$0] } ?? []
}

/// `trickbook run FILE`: runs a notebook's cells in order.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a notebook (or a script) cell by cell; '-' reads standard input.")

    @Argument(help: "The notebook file, or - for standard input.") var file: String
    @Option(help: "Which cells: N, A-B, a comma list, or all.") var cells: String = "all"
    @Flag(help: "Set the global 'quick' so that notebooks shrink their work.") var quick = false
    @Option(help: "Random seed (also the global 'seed').") var seed: Int = 0
    @Option(help: "Also write the run as one self-contained HTML page: every cell with its output.") var html: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("A parameter the notebook reads with param(name, default); repeatable.", valueName: "name=value"))
    var parameters: [String] = []

    func run() throws {
        let notebook: Notebook, selection: [Int], given: [String: Value]
        do {
            notebook = try Notebook.load(file)
            selection = try notebook.select(cells)
            given = try Parameters.parse(parameters)
        } catch {
            FileHandle.standardError.write("error: \(error)\n".data(using: .utf8) ?? Data())
            throw ExitCode(2)
        }
        do { try ParallelRun.start(notebook, seed: seed, quick: quick, cells: cells, parameters: parameters) } catch let e as ExitCode { throw e } catch {
            FileHandle.standardError.write("error: \(error)\n".data(using: .utf8) ?? Data())
            throw ExitCode(2)
        }
        let session = makeSession(quick: quick, seed: seed)
        ParallelRun.label(session)
        session.interp.parameters = given
        defer { for w in Parameters.unread(in: session.interp) { FileHandle.standardError.write((w + "\n").data(using: .utf8) ?? Data()) } }
        guard let html else {
            for n in selection where !session.runCell(notebook.cells[n - 1], of: notebook) {
                throw ExitCode(ParallelRun.failed(1))
            }
            ParallelRun.finish()
            return
        }
        let report = Report(notebook: notebook, session: session)
        var failed = false
        for n in selection {
            if failed { report.skipped(notebook.cells[n - 1]) } else if !report.run(notebook.cells[n - 1]) { failed = true }
        }
        do {
            try report.write(to: html, command: "trickbook " + CommandLine.arguments.dropFirst().joined(separator: " "), seed: seed)
        } catch {
            FileHandle.standardError.write("error: \(error)\n".data(using: .utf8) ?? Data())
            throw ExitCode(2)
        }
        if failed { throw ExitCode(ParallelRun.failed(1)) }
        ParallelRun.finish()
    }
}

/// `trickbook notebook [FILE]`: the notebook in the browser.
struct NotebookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notebook",
        abstract: "Open a notebook in the browser: cells with their outputs below them, run by this process.",
        discussion: """
            Serves the page on 127.0.0.1 and prints its URL, with the random token every request needs. \
            Anyone who can reach the server can run code: --host binds elsewhere, the token is still required.
            """)

    @Argument(help: "The notebook file (created when first saved); none: a new untitled.tb here.") var file: String?
    @Option(help: "The port (0: a free one).") var port: Int = 0
    @Option(help: "The address to bind (an IP address).") var host: String = "127.0.0.1"
    @Flag(help: "Set the global 'quick' so that notebooks shrink their work.") var quick = false
    @Option(help: "Random seed (also the global 'seed').") var seed: Int = 0
    @Option(name: .customLong("undo-mb"), help: "Memory undo's snapshots may hold, in MB (default: 1024, or an eighth of memory).")
    var undoMB: Int?

    func run() throws {
        guard let p = UInt16(exactly: port) else { throw ValidationError("--port must be 0 to 65535, got \(port)") }
        if let undoMB, undoMB < 0 || undoMB > 1 << 30 { throw ValidationError("--undo-mb must be 0 to \(1 << 30), got \(undoMB)") }
        let path = file ?? Self.untitled()
        let bind = host == "localhost" ? "127.0.0.1" : host
        let server: NotebookServer
        do {
            server = try NotebookServer(path: path, bindHost: bind, port: p, undoBytes: undoMB.map { $0 << 20 }) {
                makeSession(quick: quick, seed: seed)
            }
        } catch {
            FileHandle.standardError.write("error: \(error)\n".data(using: .utf8) ?? Data())
            throw ExitCode(2)
        }
        let done = DispatchSemaphore(value: 0)
        let outcome = Box<Result<String, Error>>()
        Task {
            do { outcome.value = .success(try await server.start()) } catch { outcome.value = .failure(error) }
            done.signal()
        }
        done.wait()
        switch outcome.value {
        case .success(let url)?:
            print("trickbook notebook: \(path)\n    \(url)\nCtrl-C stops the server.")
            fflush(stdout)
        case .failure(let error)?:
            FileHandle.standardError.write("error: \(error)\n".data(using: .utf8) ?? Data())
            throw ExitCode(2)
        case nil:
            throw ExitCode(2)
        }
        while true { sleep(3600) }
    }

    /// untitled.tb, or untitled-2.tb and on when it exists.
    static func untitled() -> String {
        var name = "untitled.tb", k = 2
        while FileManager.default.fileExists(atPath: name) {
            name = "untitled-\(k).tb"
            k += 1
        }
        return name
    }
}

final class Box<T>: @unchecked Sendable { var value: T? }

/// `trickbook check FILE`: parses every cell without running anything.
/// The notebook in `file`, or its error on stderr and exit status 2.
func loadOrExit(_ file: String) throws -> Notebook {
    do { return try Notebook.load(file) } catch {
        FileHandle.standardError.write("error: \(error)\n".data(using: .utf8) ?? Data())
        throw ExitCode(2)
    }
}

/// `trickbook disasm FILE`: the bytecode of the functions a script or notebook declares.
struct Disasm: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the bytecode of the functions a script or notebook declares, without running it.")

    @Argument(help: "The script or notebook file, or - for standard input.") var file: String

    func run() throws {
        let notebook = try loadOrExit(file)
        var failed = false
        for cell in notebook.cells where !cell.isMarkdown {
            do {
                print(try Interpreter().disassemble(cell.source, name: notebook.name))
            } catch let e as ScriptError {
                FileHandle.standardError.write((e.report + "\n").data(using: .utf8) ?? Data())
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that a notebook parses, without running it.")

    @Argument(help: "The notebook file, or - for standard input.") var file: String

    func run() throws {
        let notebook = try loadOrExit(file)
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
