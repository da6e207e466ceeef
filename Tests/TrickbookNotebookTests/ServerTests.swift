import Foundation
import Testing
@testable import TrickbookNotebook

/// `trickbook notebook` on a free port, as a user starts it (the debug build), over a notebook
/// file in a folder of its own. Its own process: the tests' blocking sockets cannot starve it.
final class ServerProcess {
    let process = Process()
    let port: UInt16
    let token: String
    let dir: String

    init(_ name: String, text: String, quick: Bool = false, options: [String] = []) throws {
        dir = try scratch(name)
        let path = dir + "/notebook.tb"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        process.executableURL = repository.appendingPathComponent(".build/debug/trickbook")
        process.arguments = ["notebook", path, "--seed", "1"] + (quick ? ["--quick"] : []) + options
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.standardError
        let started = Date()
        try process.run()
        var shown = ""
        while !shown.contains("Ctrl-C") {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            shown += String(decoding: data, as: UTF8.self)
        }
        print("notebook server: URL printed \(Int(Date().timeIntervalSince(started) * 1000)) ms after the process started")
        guard let r = shown.range(of: #"http://127\.0\.0\.1:(\d+)/\?token=([0-9a-f]+)"#, options: .regularExpression) else {
            throw WireError("no URL in what trickbook printed: \(shown)")
        }
        let url = String(shown[r])
        let afterHost = url.dropFirst("http://127.0.0.1:".count)
        port = UInt16(afterHost.prefix { $0.isNumber }) ?? 0
        token = String(url[url.range(of: "token=")!.upperBound...])
        #expect(token.count == 64, "a 256-bit token")
    }

    /// SIGKILL: a child started from a test thread inherits its blocked signals, SIGTERM among them.
    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

func ids(_ notebook: [String: Any]) -> [Int] {
    (notebook["cells"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } ?? []
}

@Suite(.serialized) struct ServerTests {
    static let text = """
        # %% Print
        print("one")
        print("two")
        plot([3, 2, 1])
        # %% Stream
        print(clock())
        let t0 = clock()
        while clock() - t0 < 1.0 {}
        # %% Counter
        var n = 0
        # %% Forever
        while true { n += 1 }
        # %% After
        print(n > 0)
        # %% Fails
        let y = 2
        y.nope
        """

    /// A cell's outputs arrive in order, under its id, between its start and its end; a line
    /// printed while the cell still runs arrives before the cell ends.
    @Test func aCellsOutputsStreamInOrder() throws {
        let server = try ServerProcess("stream", text: Self.text)
        let ws = try #require(try WireClient.webSocket(port: server.port, token: server.token).0)
        let notebook = try ws.event()
        #expect(notebook["ev"] as? String == "notebook")
        let cells = ids(notebook)
        #expect(cells.count == 6)
        ws.send("{\"op\": \"run\", \"ids\": [\(cells[0])]}")
        let first = try ws.events { $0["ev"] as? String == "done" }
        #expect(first.map { $0["ev"] as? String } == ["start", "out", "out", "done"])
        #expect(first.allSatisfy { $0["id"] as? Int == cells[0] })
        let text = (first[1]["output"] as? [String: Any])?["text"] as? String
        #expect(text == "one\ntwo")
        #expect((first[2]["output"] as? [String: Any])?["kind"] as? String == "svg")
        #expect(first[3]["status"] as? String == "ok")

        ws.send("{\"op\": \"run\", \"ids\": [\(cells[1])]}")
        let stream = try ws.events { $0["ev"] as? String == "out" }
        let arrived = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        let printed = try #require(Double((stream.last?["output"] as? [String: Any])?["text"] as? String ?? ""))
        let rest = try ws.events { $0["ev"] as? String == "done" }
        #expect(rest.count == 1, "the line came while the cell was still running")
        print("notebook server: a printed line reached the page's socket after \(String(format: "%.1f", (arrived - printed) * 1000)) ms")
        #expect(arrived - printed < 0.9)

        // An error carries its place within the cell.
        ws.send("{\"op\": \"run\", \"ids\": [\(cells[5])]}")
        let failed = try ws.events { $0["ev"] as? String == "done" }
        let error = try #require(failed.first { $0["ev"] as? String == "out" }?["output"] as? [String: Any])
        #expect(error["kind"] as? String == "error")
        #expect(error["line"] as? Int == 2)
        #expect(failed.last?["status"] as? String == "error")
    }

    /// Interrupt stops a `while true` cell as Ctrl-C does in the REPL; the variable keeps its value
    /// and the next cell runs.
    @Test func interruptKeepsTheVariables() throws {
        let server = try ServerProcess("interrupt", text: Self.text)
        let ws = try #require(try WireClient.webSocket(port: server.port, token: server.token).0)
        let cells = ids(try ws.event())
        ws.send("{\"op\": \"run\", \"ids\": [\(cells[2]), \(cells[3])]}")
        _ = try ws.events { $0["ev"] as? String == "start" && $0["id"] as? Int == cells[3] }
        usleep(300_000)
        ws.send("{\"op\": \"interrupt\"}")
        let stopped = try ws.events { $0["ev"] as? String == "done" }
        #expect(stopped.last?["id"] as? Int == cells[3])
        #expect(stopped.last?["status"] as? String == "interrupted")
        ws.send("{\"op\": \"run\", \"ids\": [\(cells[4])]}")
        let after = try ws.events { $0["ev"] as? String == "done" }
        let out = after.first { $0["ev"] as? String == "out" }?["output"] as? [String: Any]
        #expect(out?["text"] as? String == "true")
    }

    /// Undo puts back the model's weights, the optimizer's state, the random generator and the
    /// loader's epoch (its shuffle and flips) as they were before the cell ran: the same steps
    /// after an undo give the same numbers.
    @Test func undoPutsBackModelsOptimizersAndGenerators() throws {
        let server = try ServerProcess(
            "undo",
            text: """
                # %% Setup
                let m = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 4)
                let o = sgd(m, 0.1)
                let batches = loader(fashion_mnist("train", limit: 48), 16, shuffle: true, transform: hflip())
                # %% Train
                let losses = []
                for b in batches { losses.append(train_step(m, b, o, cross_entropy()).loss) }
                print("{losses[0]:.6f} {losses[2]:.6f} {randn([1]).item:.6f} {o.step_count}")
                """)
        let ws = try #require(try WireClient.webSocket(port: server.port, token: server.token).0)
        let cells = ids(try ws.event())
        func printed(_ id: Int) throws -> String? {
            ws.send("{\"op\": \"run\", \"ids\": [\(id)]}")
            let events = try ws.events { $0["ev"] as? String == "done" }
            #expect(events.last?["status"] as? String == "ok", "\(events)")
            // The snapshot before the cell holds the model (and, once it trained, the momentum).
            #expect(id == cells[0] || (events.last?["snapshots"] as? Int ?? 0) > 4 * 10_000, "the snapshots' size is reported")
            return events.compactMap { ($0["output"] as? [String: Any])?["text"] as? String }.first
        }
        _ = try printed(cells[0])
        let first = try printed(cells[1])
        let second = try printed(cells[1])
        #expect(first != second, "training went on: other losses, another draw, more steps")
        ws.send("{\"op\": \"undo\", \"id\": \(cells[1])}")
        let undone = try ws.events { $0["ev"] as? String == "notice" }
        #expect((undone.last?["text"] as? String)?.hasPrefix("undid cell [2]") == true)
        let cellsEvent = try #require(undone.first { $0["ev"] as? String == "cells" }?["cells"] as? [[String: Any]])
        #expect(cellsEvent[1]["status"] as? String == "stale")
        #expect(try printed(cells[1]) == second, "after undo the cell runs from the state before its last run")
    }

    /// Undo's snapshots stay under their bound (`--undo-mb`): the oldest go first, a snapshot
    /// alone over the bound is not kept (and the page is told), and what is kept still undoes.
    @Test func undoKeepsItsSnapshotsUnderTheBound() throws {
        let server = try ServerProcess(
            "undo-bound",
            text: """
                # %% A
                let a = linear(256, 256)
                # %% B
                let b = linear(256, 256)
                # %% C
                let c = 1
                # %% D
                let d = 2
                # %% E
                let e = linear(1024, 1024)
                # %% F
                let f = 3
                """, options: ["--undo-mb", "1"])
        let ws = try #require(try WireClient.webSocket(port: server.port, token: server.token).0)
        let cells = ids(try ws.event())
        let layer = 4 * (256 * 256 + 256)  // bytes of one 256→256 layer's weight and bias
        func run(_ k: Int) throws -> [[String: Any]] {
            ws.send("{\"op\": \"run\", \"ids\": [\(cells[k])]}")
            let events = try ws.events { $0["ev"] as? String == "done" }
            #expect(events.last?["status"] as? String == "ok")
            return events
        }
        func held(_ events: [[String: Any]]) -> Int { events.last?["snapshots"] as? Int ?? -1 }
        _ = try run(0)
        #expect(held(try run(1)) == layer, "before B: a")
        #expect(held(try run(2)) == 3 * layer, "before C: a and b, with B's")
        // Before D: a and b again; with all three kept they would pass 1 MB, so B's and C's go.
        #expect(held(try run(3)) == 2 * layer)
        func undo(_ k: Int) throws -> String {
            ws.send("{\"op\": \"undo\", \"id\": \(cells[k])}")
            return try ws.events { $0["ev"] as? String == "notice" }.last?["text"] as? String ?? ""
        }
        #expect(try undo(1).hasPrefix("nothing to undo"), "B's snapshot was dropped")
        #expect(try undo(3).hasPrefix("undid cell [4]"))
        _ = try run(4)
        let f = try run(5)  // the state before F (a, b and a 4 MB layer) is over the bound alone
        #expect(f.contains { ($0["text"] as? String)?.hasPrefix("no undo for this run") == true })
        #expect(held(f) <= 1 << 20)
    }

    /// No token, a wrong token or another origin: refused, for the page, its files and its socket.
    @Test func theTokenIsRequiredEverywhere() throws {
        let server = try ServerProcess("token", text: "# %%\nprint(1)\n")
        try "hello".write(toFile: server.dir + "/note.txt", atomically: true, encoding: .utf8)
        let port = server.port, token = server.token
        #expect(try WireClient.get(port: port, "/").0 == 403)
        #expect(try WireClient.get(port: port, "/?token=wrong").0 == 403)
        #expect(try WireClient.get(port: port, "/?token=" + String(token.dropLast()) + (token.hasSuffix("0") ? "1" : "0")).0 == 403)
        #expect(try WireClient.get(port: port, "/files/note.txt").0 == 403)
        let page = try WireClient.get(port: port, "/?token=" + token)
        #expect(page.0 == 200 && page.1.contains("id=\"tb-data\""))
        #expect(try WireClient.get(port: port, "/files/note.txt", headers: ["Authorization": "token " + token]) == (200, "hello"))
        #expect(try WireClient.webSocket(port: port, token: nil).1 == 403)
        #expect(try WireClient.webSocket(port: port, token: "wrong").1 == 403)
        #expect(try WireClient.webSocket(port: port, token: token, origin: "http://evil.example").1 == 403)
        #expect(try WireClient.webSocket(port: port, token: token, origin: "http://127.0.0.1:\(port + 1)").1 == 403)
        #expect(try WireClient.webSocket(port: port, token: token, origin: "http://127.0.0.1:\(port)").1 == 101)
        #expect(try WireClient.webSocket(port: port, token: token, origin: "http://localhost:\(port)").1 == 101)
    }

    /// Files are served from the notebook's folder only: `..`, absolute paths, encoded dots and
    /// symbolic links that lead out are refused.
    @Test func pathTraversalIsRefused() throws {
        let server = try ServerProcess("files", text: "# %%\n")
        try FileManager.default.createDirectory(atPath: server.dir + "/out", withIntermediateDirectories: true)
        try "inside".write(toFile: server.dir + "/out/a.txt", atomically: true, encoding: .utf8)
        let outside = try scratch("files-outside")
        try "secret".write(toFile: outside + "/secret.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: server.dir + "/out/link.txt", withDestinationPath: outside + "/secret.txt")
        try FileManager.default.createSymbolicLink(atPath: server.dir + "/up", withDestinationPath: outside)
        let t = "?token=" + server.token
        #expect(try WireClient.get(port: server.port, "/files/out/a.txt" + t) == (200, "inside"))
        for bad in ["/files/../files-outside/secret.txt", "/files/out/../../tb-files-outside-\(getpid())/secret.txt",
                    "/files/%2e%2e/tb-files-outside-\(getpid())/secret.txt", "/files/" + outside + "/secret.txt",
                    "/files//etc/passwd", "/files/out/link.txt", "/files/up/secret.txt", "/files/out", "/files/"] {
            let (status, body) = try WireClient.get(port: server.port, bad + t)
            #expect(status == 404, "\(bad) gave \(status)")
            #expect(!body.contains("secret"))
        }
    }

    /// Save writes the file back byte for byte; a file changed on disk meanwhile is not overwritten
    /// until the page says so, and only the page that saved is asked.
    @Test func saveRoundTripsAndNoticesChangesOnDisk() throws {
        let original = "print(0)\n# %% [markdown] Notes\n# Some *prose*\n\n# %%   Odd   spacing\nlet a = 1\r\n\n"
        let server = try ServerProcess("save", text: original)
        let ws = try #require(try WireClient.webSocket(port: server.port, token: server.token).0)
        let cells = ids(try ws.event())
        ws.send("{\"op\": \"save\"}")
        #expect(try ws.event()["text"] as? String == "saved notebook.tb")
        #expect(try String(contentsOfFile: server.dir + "/notebook.tb", encoding: .utf8) == original)

        let other = try #require(try WireClient.webSocket(port: server.port, token: server.token).0)
        #expect(try other.event()["ev"] as? String == "notebook")
        try "changed elsewhere\n".write(toFile: server.dir + "/notebook.tb", atomically: true, encoding: .utf8)
        ws.send("{\"op\": \"edit\", \"id\": \(cells[2]), \"source\": \"let a = 2\"}")
        ws.send("{\"op\": \"save\"}")
        #expect(try ws.event()["ev"] as? String == "conflict")
        #expect(try String(contentsOfFile: server.dir + "/notebook.tb", encoding: .utf8) == "changed elsewhere\n")
        ws.send("{\"op\": \"save\", \"force\": true}")
        #expect(try ws.event()["ev"] as? String == "notice")
        #expect(try other.event()["ev"] as? String == "notice", "the other page is told it was saved, and was not asked")
        let saved = try String(contentsOfFile: server.dir + "/notebook.tb", encoding: .utf8)
        #expect(saved == original.replacingOccurrences(of: "let a = 1\r\n\n", with: "let a = 2"))
    }

    /// Adding, moving and deleting cells from the page: every page sees the new order, and save
    /// writes it.
    @Test func addMoveDeleteAndSave() throws {
        let server = try ServerProcess("cells", text: "# %% A\na()\n# %% B\nb()\n# %% C\nc()")
        let ws = try #require(try WireClient.webSocket(port: server.port, token: server.token).0)
        let cells = ids(try ws.event())
        ws.send("{\"op\": \"add\", \"after\": \(cells[0]), \"kind\": \"markdown\"}")
        let added = try #require(try ws.event()["cells"] as? [[String: Any]])
        #expect(added.map { $0["kind"] as? String } == ["code", "markdown", "code", "code"])
        let new = try #require(added[1]["id"] as? Int)
        ws.send("{\"op\": \"edit\", \"id\": \(new), \"source\": \"# Some prose\"}")
        ws.send("{\"op\": \"move\", \"id\": \(cells[2]), \"by\": -3}")
        #expect(ids(try ws.event()) == [cells[2], cells[0], new, cells[1]])
        ws.send("{\"op\": \"delete\", \"id\": \(cells[1])}")
        #expect(ids(try ws.event()) == [cells[2], cells[0], new])
        ws.send("{\"op\": \"save\"}")
        #expect(try ws.event()["text"] as? String == "saved notebook.tb")
        let saved = try String(contentsOfFile: server.dir + "/notebook.tb", encoding: .utf8)
        #expect(saved == "# %% C\nc()\n# %% A\na()\n# %% [markdown]\n# Some prose")
    }

    /// A folder, or a file that is not UTF-8 (a save could not give its bytes back), is refused
    /// with a message; nothing is served.
    @Test func aFolderOrNonTextIsRefused() throws {
        let dir = try scratch("refused")
        try Data([0x23, 0x20, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: dir + "/binary.tb"))
        for (target, message) in [(dir, "is a folder"), (dir + "/binary.tb", "is not UTF-8 text")] {
            let p = Process()
            p.executableURL = repository.appendingPathComponent(".build/debug/trickbook")
            p.arguments = ["notebook", target]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 2)
            #expect(text.contains(message), "\(text)")
        }
    }
}
