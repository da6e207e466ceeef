import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking  // a URL read over HTTP
#endif
import Testing
@testable import TrickbookREPL

@Suite struct NotebookTests {
    @Test func cellsTitlesMarkdownAndLines() {
        let nb = Notebook(name: "n.tb", text: "let a = 1\n\n# %% [markdown] Intro\n# # Title\n# text\n# %% Train\nprint(a)\n# %%\nx")
        #expect(nb.cells.count == 4)
        #expect(nb.cells[0].title == "" && nb.cells[0].firstLine == 1 && !nb.cells[0].isMarkdown)
        #expect(nb.cells[1].isMarkdown && nb.cells[1].title == "Intro" && nb.cells[1].prose == "# Title\ntext")
        #expect(nb.cells[2].title == "Train" && nb.cells[2].firstLine == 7 && nb.cells[2].source == "print(a)")
        #expect(nb.cells[3].number == 4 && nb.cells[3].source == "x")
        // Blank text before the first marker is not a cell.
        #expect(Notebook(name: "m", text: "\n\n# %% one\n1").cells.count == 1)
    }

    @Test func cellSelection() throws {
        let nb = Notebook(name: "n.tb", text: (1...6).map { "# %% c\($0)\n\($0)" }.joined(separator: "\n"))
        #expect(try nb.select("all") == [1, 2, 3, 4, 5, 6])
        #expect(try nb.select("2-4") == [2, 3, 4])
        #expect(try nb.select("1,3,5-6") == [1, 3, 5, 6])
        #expect(throws: NotebookError.self) { try nb.select("7") }
        #expect(throws: NotebookError.self) { try nb.select("4-2") }
        #expect(throws: NotebookError.self) { try nb.select("x") }
    }
}

/// The built executable, run as a user runs it.
enum Binary {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let path = root.appendingPathComponent(".build/debug/trickbook").path
    static let notebooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("notebooks").path

    /// Runs trickbook with arguments and optional standard input; returns status, stdout, stderr.
    static func run(_ args: [String], stdin: String? = nil) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(stdin.data(using: .utf8) ?? Data()) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

@Suite struct RunnerTests {
    @Test func runsEveryCellInOrder() throws {
        let (status, out, err) = try Binary.run(["run", Binary.notebooks + "/sample.tb", "--seed", "7"])
        #expect(status == 0, "\(err)")
        let lines = out.components(separatedBy: "\n")
        #expect(lines.contains("# The sample") && lines.contains("Prose is shown, not run."))
        #expect(lines.contains("n = 10") && lines.contains("20") && lines.contains("hello 7"))
        #expect(lines.filter { $0.hasPrefix("── [") }.count == 4)
    }

    @Test func quickFlagAndCellSelection() throws {
        let (status, out, _) = try Binary.run(["run", Binary.notebooks + "/sample.tb", "--quick", "--cells", "1,3"])
        #expect(status == 0)
        #expect(out.contains("n = 3") && out.contains("\n6\n") && !out.contains("hello"))
        let (bad, _, err) = try Binary.run(["run", Binary.notebooks + "/sample.tb", "--cells", "9"])
        #expect(bad == 2 && err.contains("cell 9 does not exist"))
    }

    @Test func firstErrorStopsWithItsPlaceInTheFile() throws {
        let (status, out, err) = try Binary.run(["run", Binary.notebooks + "/broken.tb"])
        #expect(status == 1)
        #expect(out.contains("first") && !out.contains("not reached") && !out.contains("never"))
        #expect(err.contains("broken.tb:7:11: error: unknown name 'nope'"), "\(err)")
        #expect(err.contains("    print(a + nope)"))
    }

    @Test func checkParsesWithoutRunning() throws {
        let (ok, out, _) = try Binary.run(["check", Binary.notebooks + "/sample.tb"])
        #expect(ok == 0 && out.contains("4 cells parse") && !out.contains("hello"))
        let (bad, _, err) = try Binary.run(["check", Binary.notebooks + "/syntax.tb"])
        #expect(bad == 1 && err.contains("syntax.tb:"), "\(err)")
        let (missing, _, merr) = try Binary.run(["run", "/no/such/notebook.tb"])
        #expect(missing == 2 && merr.contains("no such file"))
    }

    @Test func standardInput() throws {
        let (status, out, _) = try Binary.run([], stdin: "print(1 + 2)\n")
        #expect(status == 0 && out == "3\n")
        let (s2, out2, _) = try Binary.run(["run", "-"], stdin: "# %% a\nprint(\"from stdin\")\n")
        #expect(s2 == 0 && out2.contains("from stdin"))
        let (s3, _, err3) = try Binary.run([], stdin: "print(1)\nprint(oops)\n")
        #expect(s3 == 1 && err3.contains("<stdin>:2:7: error: unknown name 'oops'"))
    }
}

/// The binary copied alone into an empty folder: the stdlib and the page are inside it.
@Suite struct InstalledBinaryTests {
    @Test func aCopiedBinaryRunsTheTourAndServesThePage() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-alone-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Binary.path, toPath: dir + "/trickbook")
        let tour = Binary.root.appendingPathComponent("notebooks/00-tour.tb").path

        let run = Process()
        run.executableURL = URL(fileURLWithPath: dir + "/trickbook")
        run.arguments = ["run", tour, "--quick"]
        run.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        env["TRICKBOOK_STDLIB"] = nil
        env["TRICKBOOK_PATH"] = nil
        run.environment = env
        let out = Pipe()
        run.standardOutput = out
        run.standardError = out
        try run.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        run.waitUntilExit()
        #expect(run.terminationStatus == 0, "\(text.suffix(2000))")
        #expect(text.contains("of 24 test images right"))

        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: dir + "/trickbook")
        serve.arguments = ["notebook", dir + "/new.tb"]
        serve.currentDirectoryURL = URL(fileURLWithPath: dir)
        serve.environment = env
        let printed = Pipe()
        serve.standardOutput = printed
        try serve.run()
        defer { kill(serve.processIdentifier, SIGKILL); serve.waitUntilExit() }  // SIGTERM may be blocked here
        var shown = ""
        while !shown.contains("token=") || !shown.contains("\n    http") {
            let data = printed.fileHandleForReading.availableData
            if data.isEmpty { break }
            shown += String(decoding: data, as: UTF8.self)
        }
        let url = try #require(shown.split(separator: "\n").first { $0.contains("token=") }.map { $0.trimmingCharacters(in: .whitespaces) })
        let page = try String(contentsOf: try #require(URL(string: url)), encoding: .utf8)
        #expect(page.contains("id=\"tb-data\"") && page.contains("function appendOutput"), "the page and its script come from the binary")
    }
}
