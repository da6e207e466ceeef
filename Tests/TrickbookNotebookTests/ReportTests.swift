import Foundation
import Testing
import TrickbookAssets
import TrickbookBindings
@testable import TrickbookNotebook
import TrickbookREPL
import TrickbookScript

/// A session as `trickbook` makes one: the built-in stdlib, the bindings, undo snapshots.
func testSession(_ seed: Int = 1) -> Session {
    let session = Session(stdlib: [], quick: true, seed: seed) {
        $0.builtinModules = Assets.stdlib
        Bindings.register(into: $0, seed: UInt64(seed))
    }
    session.takeSnapshot = { [unowned session] limit in
        Bindings.snapshot(of: session.interp, limit: limit).map { Session.Snapshot(bytes: $0.bytes, restore: $0.restore) }
    }
    return session
}

/// A folder of its own for a test's files.
func scratch(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// The JSON a page holds: what the script element with id tb-data contains.
func pageData(_ html: String) throws -> [String: Any] {
    let start = try #require(html.range(of: "<script type=\"application/json\" id=\"tb-data\">"))
    let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
    let json = String(html[start.upperBound..<end.lowerBound])
    #expect(!json.contains("<"), "a '<' inside the data would let it end the script element")
    return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
}

@Suite struct ReportTests {
    /// `run --html`: every cell with its outputs in order (printed text, an inline chart, an
    /// inline picture, a table, a progress bar's last state, an error with its place in the
    /// cell), markdown as HTML, the cells after a failure present but not run.
    @Test func aReportHoldsEveryCellsOutput() throws {
        let dir = try scratch("report")
        let text = """
            # %% [markdown] Intro
            # # A *short* run
            # %% Outputs
            print("hello from cell 2")
            plot([3, 2, 1.5, 1.2], to: "\(dir)/curve.svg", title: "loss <falling>")
            show_images(ones([2, 1, 4, 4]), to: "\(dir)/ones.png")
            print(table([{"trick": "baseline", "top1": 0.9}]))
            let p = progress(3, "steps")
            for i in 0..<3 { p.update(1, images: 8) }
            p.close()
            # %% Fails
            let x = 1
            print(x +)
            # %% After
            print("never")
            """
        let notebook = Notebook(name: "\(dir)/demo.tb", text: text)
        let session = testSession()
        var printed: [String] = []
        session.output = { printed.append($0) }
        session.errorOutput = { printed.append($0) }
        let report = Report(notebook: notebook, session: session)
        var failed = false
        for cell in notebook.cells {
            if failed { report.skipped(cell) } else if !report.run(cell) { failed = true }
        }
        try report.write(to: "\(dir)/report.html", command: "trickbook run demo.tb --html report.html", seed: 1)
        let html = try String(contentsOfFile: "\(dir)/report.html", encoding: .utf8)
        let data = try pageData(html)
        let cells = try #require(data["cells"] as? [[String: Any]])
        #expect(cells.count == 4)
        #expect(cells.map { $0["status"] as? String } == ["ok", "ok", "error", nil])
        #expect((cells[0]["html"] as? String)?.contains("<h1>A <em>short</em> run</h1>") == true)
        let outs = try #require(cells[1]["outputs"] as? [[String: Any]])
        #expect(outs.map { $0["kind"] as? String } == ["text", "svg", "png", "table", "progress"])
        #expect(outs[0]["text"] as? String == "hello from cell 2")
        #expect((outs[1]["svg"] as? String)?.contains("loss &lt;falling&gt;") == true)
        let png = try #require(Data(base64Encoded: outs[2]["png"] as? String ?? ""))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        #expect(png == FileManager.default.contents(atPath: "\(dir)/ones.png"), "the picture is the file's bytes")
        #expect(outs[3]["columns"] as? [String] == ["trick", "top1"])
        #expect(outs[4]["fraction"] as? Double == 1.0)
        let error = try #require((cells[2]["outputs"] as? [[String: Any]])?.first)
        #expect(error["kind"] as? String == "error")
        #expect(error["line"] as? Int == 2, "the error's line within its cell")
        #expect((error["text"] as? String)?.contains("demo.tb:13:10:") == true, "the report names the file line: \(error)")
        #expect((data["meta"] as? [String: Any])?["command"] as? String == "trickbook run demo.tb --html report.html")
        // What the cells print still reaches the terminal.
        #expect(printed.contains("hello from cell 2"))
        // Nothing in the page comes from the network: no link, no source from elsewhere, and the
        // page's policy forbids any connection.
        for fetch in ["<link", "src=\"http", "href=\"http", "url(http", "@import"] { #expect(!html.contains(fetch)) }
        #expect(html.contains("default-src 'none'") && html.contains("connect-src 'none'"))
    }

    /// A table shows once, as a table, whether it is printed or is the cell's value (Jupyter's
    /// rule for an object with an HTML form); its text is there for print(t.text), and a terminal
    /// prints the text, once, either way.
    @Test func aTableShowsOnce() throws {
        let rows = #"[{"trick": "baseline", "top1": 0.9}, {"trick": "+ cosine", "top1": 0.91}]"#
        let text = """
            # %% Printed
            print(table(\(rows)))
            # %% Value
            table(\(rows))
            # %% Text
            let t = table(\(rows))
            print(t.text)
            """
        let notebook = Notebook(name: "tables.tb", text: text)
        let report = Report(notebook: notebook, session: testSession())
        for cell in notebook.cells { #expect(report.run(cell)) }
        let dir = try scratch("tables")
        try report.write(to: "\(dir)/report.html", command: "trickbook run tables.tb --html report.html", seed: 1)
        let cells = try #require(try pageData(String(contentsOfFile: "\(dir)/report.html", encoding: .utf8))["cells"] as? [[String: Any]])
        let kinds = cells.map { ($0["outputs"] as? [[String: Any]] ?? []).map { $0["kind"] as? String ?? "" } }
        #expect(kinds == [["table"], ["table"], ["text"]])
        let terminal = testSession()
        var printed: [String] = []
        terminal.output = { printed.append($0) }
        for cell in notebook.cells { #expect(terminal.evaluate(cell.source, name: "tables.tb")) }
        let expected = "trick     top1\n────────  ────\nbaseline   0.9\n+ cosine  0.91"
        #expect(printed == [expected, expected, expected], "\(printed)")
    }
}
