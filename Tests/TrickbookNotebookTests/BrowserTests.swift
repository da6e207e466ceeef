import Foundation
import Testing
@testable import TrickbookNotebook

/// Headless Chromium, driven over the DevTools protocol with the test's own WebSocket client.
final class Browser {
    let process = Process()
    let devtools: WireClient
    private var nextID = 1
    let profile: String

    init() throws {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let chromium else { throw WireError("headless Chromium is needed: apt-get install chromium (scripts/setup.sh --tests)") }
        profile = try scratch("chromium-profile")
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
                             "--user-data-dir=\(profile)", "--window-size=1100,1400", "about:blank"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        var seen = ""
        let deadline = Date().addingTimeInterval(30)
        var port: UInt16?
        while port == nil, Date() < deadline {
            let data = err.fileHandleForReading.availableData
            if data.isEmpty { break }
            seen += String(decoding: data, as: UTF8.self)
            if let r = seen.range(of: #"ws://127\.0\.0\.1:(\d+)/"#, options: .regularExpression) {
                port = UInt16(seen[r].dropFirst("ws://127.0.0.1:".count).dropLast())
            }
        }
        guard let port else { throw WireError("Chromium did not open its DevTools port: \(seen.suffix(500))") }
        // The page target of about:blank.
        var target: String?
        for _ in 0..<50 where target == nil {
            let (_, list) = try WireClient.get(port: port, "/json/list")
            if let items = try? JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]],
               let page = items.first(where: { $0["type"] as? String == "page" }), let ws = page["webSocketDebuggerUrl"] as? String,
               let r = ws.range(of: "/devtools/") {
                target = String(ws[r.lowerBound...])
            } else { usleep(100_000) }
        }
        guard let target, let client = try WireClient.webSocket(port: port, path: target).0 else {
            throw WireError("no page target in Chromium")
        }
        devtools = client
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)  // SIGTERM may be blocked: see ServerProcess
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: profile)
    }

    /// Sends a DevTools command and returns its result (events in between are skipped).
    @discardableResult
    func call(_ method: String, _ params: [String: Any] = [:]) throws -> [String: Any] {
        let id = nextID
        nextID += 1
        let body = try JSONSerialization.data(withJSONObject: ["id": id, "method": method, "params": params])
        devtools.send(String(decoding: body, as: UTF8.self))
        while true {
            let m = try devtools.event()
            if m["id"] as? Int == id {
                if let e = m["error"] { throw WireError("\(method): \(e)") }
                return m["result"] as? [String: Any] ?? [:]
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    @discardableResult
    func evaluate(_ js: String) throws -> Any? {
        let r = try call("Runtime.evaluate", ["expression": js, "returnByValue": true])
        return (r["result"] as? [String: Any])?["value"]
    }

    /// Writes a PNG of the page (or of `clip`) to out/NAME.
    func picture(to name: String, clip: [String: Any]? = nil) throws {
        var params: [String: Any] = ["format": "png"]
        if let clip { params["clip"] = clip; params["captureBeyondViewport"] = true }
        let shot = try call("Page.captureScreenshot", params)
        guard let png = Data(base64Encoded: shot["data"] as? String ?? ""), png.starts(with: [0x89, 0x50, 0x4E, 0x47]) else {
            throw WireError("Chromium gave no PNG for \(name)")
        }
        try? FileManager.default.createDirectory(at: repository.appendingPathComponent("out"), withIntermediateDirectories: true)
        try png.write(to: repository.appendingPathComponent("out/" + name))
    }

    /// Waits until a JavaScript condition holds.
    func wait(_ js: String, seconds: Double = 60) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try evaluate(js) as? Bool == true { return }
            usleep(100_000)
        }
        throw WireError("timed out waiting for \(js)")
    }
}

@Suite(.serialized) struct BrowserTests {
    /// The page itself, in a real browser: it loads, "Run all" runs every cell through the page,
    /// and the rendered page holds the printed text, an inline SVG chart and an inline picture.
    @Test func thePageRunsAllCellsInABrowser() throws {
        let dir = try scratch("browser-pictures")
        let server = try ServerProcess(
            "browser",
            text: """
                # %% [markdown] Intro
                # # A page *test*
                # %% Print
                print("printed by the page's cell")
                # %% Chart
                plot([3, 2, 1.5], title: "falling")
                # %% Picture
                show_images(ones([2, 1, 6, 6]), to: "\(dir)/ones.png")
                """)
        let browser = try Browser()
        try browser.call("Page.enable")
        try browser.call("Page.navigate", ["url": "http://127.0.0.1:\(server.port)/?token=\(server.token)"])
        try browser.wait("document.querySelectorAll('.cell').length === 4")
        #expect(try browser.evaluate("document.querySelector('.prose h1').textContent") as? String == "A page test")
        try browser.evaluate("[...document.querySelectorAll('header.bar button')].find(b => b.textContent === 'Run all').click()")
        try browser.wait("document.querySelectorAll('.cell.ok').length === 3")
        let text = try browser.evaluate("document.querySelector('.outputs pre').textContent") as? String
        #expect(text?.contains("printed by the page's cell") == true)
        #expect(try browser.evaluate("document.querySelectorAll('.outputs svg polyline, .outputs svg path').length > 0") as? Bool == true)
        #expect(try browser.evaluate("(() => { const i = document.querySelector('.outputs img'); return i !== null && i.complete && i.naturalWidth > 0 })()") as? Bool == true)
        #expect(FileManager.default.fileExists(atPath: dir + "/ones.png"), "what a builtin writes to a file is still written")
        // The time each cell took is shown.
        #expect((try browser.evaluate("document.querySelector('.cell.ok .status').textContent") as? String)?.hasPrefix("ran in") == true)
        // A picture of the page (out/ is not committed).
        try browser.picture(to: "notebook-page.png")
        // Moving a cell keeps what it showed: the page gets the new order, not the outputs again.
        try browser.evaluate("document.querySelector('#cell-2 .tools button[title=\"move down\"]').click()")
        try browser.wait("document.querySelector('main').children[2].id === 'cell-2'")
        #expect(try browser.evaluate("document.querySelector('#cell-2 .num').textContent") as? String == "[3]")
        #expect(try browser.evaluate("document.querySelector('#cell-2 .outputs pre').textContent.includes('printed by')") as? Bool == true)
        #expect(try browser.evaluate("document.querySelector('#cell-2').className") as? String == "cell stale")
    }

    /// The keyboard, markdown editing, Restart and Run above, as a person uses them: Shift-Enter
    /// runs the focused cell (and types no newline), a double-clicked markdown cell is edited and
    /// rendered again when it loses focus (and saved as written), Restart leaves no variable
    /// behind, and Run above runs the cells above the one last worked in.
    @Test func shiftEnterMarkdownEditingAndRestartInABrowser() throws {
        let server = try ServerProcess(
            "browser-keys",
            text: """
                # %% [markdown] Intro
                # # First title

                # %% Set
                let x = 41
                # %% Use
                print(x + 1)
                """)
        let browser = try Browser()
        try browser.call("Page.navigate", ["url": "http://127.0.0.1:\(server.port)/?token=\(server.token)"])
        try browser.wait("document.querySelectorAll('.cell').length === 3")
        func shiftEnter(_ cell: Int) throws {
            try browser.evaluate("document.querySelector('#cell-\(cell) textarea').focus()")
            for type in ["rawKeyDown", "keyUp"] {
                try browser.call("Input.dispatchKeyEvent", ["type": type, "key": "Enter", "code": "Enter",
                                                            "windowsVirtualKeyCode": 13, "modifiers": 8])  // 8: Shift
            }
        }
        try shiftEnter(2)
        try browser.wait("document.querySelector('#cell-2').className === 'cell ok'")
        #expect(try browser.evaluate("document.querySelector('#cell-2 textarea').value") as? String == "let x = 41")
        try shiftEnter(3)
        try browser.wait("document.querySelector('#cell-3').className === 'cell ok'")
        #expect(try browser.evaluate("document.querySelector('#cell-3 .outputs pre').textContent") as? String == "42\n")

        // Markdown: double-click, edit (as markdown, without the file's "# "), leave, and the new
        // text is rendered and saved as comment lines.
        try browser.evaluate("document.querySelector('#cell-1 .prose').dispatchEvent(new MouseEvent('dblclick', { bubbles: true }))")
        try browser.wait("document.querySelector('#cell-1 textarea.md-source') !== null")
        #expect(try browser.evaluate("document.querySelector('#cell-1 textarea.md-source').value") as? String == "# First title")
        try browser.evaluate("""
            (() => { const a = document.querySelector('#cell-1 textarea.md-source');
                     a.value = '# Second *title*'; a.dispatchEvent(new Event('input')); a.blur(); })()
            """)
        try browser.wait("document.querySelector('#cell-1 .prose h1')?.textContent === 'Second title'")
        try browser.evaluate("[...document.querySelectorAll('header.bar button')].find(b => b.textContent === 'Save').click()")
        let path = server.dir + "/notebook.tb"
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, (try? String(contentsOfFile: path, encoding: .utf8))?.contains("# # Second *title*") != true { usleep(50_000) }
        // The blank line before the next cell stays, as does everything else.
        #expect(try String(contentsOfFile: path, encoding: .utf8)
            == "# %% [markdown] Intro\n# # Second *title*\n\n# %% Set\nlet x = 41\n# %% Use\nprint(x + 1)")

        // Restart: a fresh session, so the cell that used x now fails, and no cell is marked as run.
        try browser.evaluate("[...document.querySelectorAll('header.bar button')].find(b => b.textContent === 'Restart').click()")
        try browser.wait("document.querySelector('#cell-2').className !== 'cell ok'")
        try shiftEnter(3)
        try browser.wait("document.querySelector('#cell-3').className === 'cell error'")
        #expect((try browser.evaluate("document.querySelector('#cell-3 .outputs').textContent") as? String)?.contains("x") == true)
        #expect(try browser.evaluate("document.querySelector('#cell-2').className") as? String != "cell ok")
        // Run above (the cell last worked in is 3): cells 1 and 2 run, 3 does not; then 3 can.
        try browser.evaluate("[...document.querySelectorAll('header.bar button')].find(b => b.textContent === 'Run above').click()")
        try browser.wait("document.querySelector('#cell-2').className === 'cell ok'")
        #expect(try browser.evaluate("document.querySelector('#cell-3').className") as? String != "cell ok")
        try shiftEnter(3)
        try browser.wait("document.querySelector('#cell-3').className === 'cell ok'")
        #expect(try browser.evaluate("document.querySelector('#cell-3 .outputs pre').textContent") as? String == "42\n")
    }

    /// What a page must survive and show: a cell printing 100,000 lines (2,000 shown, the rest behind
    /// a button), a progress bar drawn again in place (one bar, full at the end), and an error
    /// whose place, clicked, puts the cursor on its line.
    @Test func longOutputsProgressAndErrorsInABrowser() throws {
        let server = try ServerProcess(
            "browser-long",
            text: """
                # %% Lines
                for i in 0..<100000 { print("line {i}") }
                # %% Bar
                let p = progress(50, "steps")
                for i in 0..<50 { p.update(1, images: 10) }
                p.close()
                # %% Error
                let a = 1
                let b = a.nope
                # %% Picture
                show_images(randn([1024, 3, 64, 64]), columns: 32, to: "\(try scratch("browser-big"))/big.png")
                """)
        let browser = try Browser()
        try browser.call("Page.navigate", ["url": "http://127.0.0.1:\(server.port)/?token=\(server.token)"])
        try browser.wait("document.querySelectorAll('.cell').length === 4")
        try browser.evaluate("[...document.querySelectorAll('header.bar button')].find(b => b.textContent === 'Run all').click()")
        try browser.wait("document.querySelectorAll('.cell.ok, .cell.error').length === 4", seconds: 120)
        let start = Date()
        #expect(try browser.evaluate("document.querySelector('#cell-1 .outputs pre').textContent.split('\\n').length - 1") as? Int == 2000)
        #expect(try browser.evaluate("document.querySelector('#cell-1 .more').textContent") as? String == "show 98000 more lines")
        #expect(Date().timeIntervalSince(start) < 5, "the page answers at once")
        try browser.evaluate("document.querySelector('#cell-1 .more').click()")
        #expect(try browser.evaluate("document.querySelector('#cell-1 .outputs pre').textContent.split('\\n').length - 1") as? Int == 100_000)
        #expect(try browser.evaluate("document.querySelectorAll('#cell-2 .progress').length") as? Int == 1)
        #expect(try browser.evaluate("parseFloat(document.querySelector('#cell-2 .progress .fill').style.width)") as? Int == 100)
        #expect(try browser.evaluate("document.querySelector('#cell-3').className") as? String == "cell error")
        try browser.evaluate("document.querySelector('#cell-3 .loc').click()")
        // Line 2 of the cell, column 11: after "let a = 1\n" (10 characters) and 10 more.
        #expect(try browser.evaluate("document.querySelector('#cell-3 textarea').selectionStart") as? Int == 20)
        #expect(try browser.evaluate("document.activeElement === document.querySelector('#cell-3 textarea')") as? Bool == true)
        // A picture of over 10 MB (random pixels do not compress) is shown, and the page still answers.
        try browser.wait("(() => { const i = document.querySelector('#cell-4 img'); return i !== null && i.complete && i.naturalWidth > 2000 })()")
        let bytes = try #require(try browser.evaluate("document.querySelector('#cell-4 img').src.length * 3 / 4") as? Double)
        #expect(bytes > 10e6, "the picture is \(bytes) bytes")
        let asked = Date()
        #expect(try browser.evaluate("1 + 1") as? Int == 2)
        #expect(Date().timeIntervalSince(asked) < 2)
    }

    /// The tour's quick version run through its page: every cell runs, and the page is pictured
    /// for the README (out/tour-page.png; docs/notebook-page.png is a copy of one).
    @Test func theToursPageRunsEveryCell() throws {
        let tour = try String(contentsOf: repository.appendingPathComponent("notebooks/00-tour.tb"), encoding: .utf8)
        let server = try ServerProcess("browser-tour", text: tour, quick: true)
        let browser = try Browser()
        try browser.call("Page.navigate", ["url": "http://127.0.0.1:\(server.port)/?token=\(server.token)"])
        let cells = tour.split(separator: "\n").filter { $0.hasPrefix("# %%") }.count
        try browser.wait("document.querySelectorAll('.cell').length === \(cells)")
        let code = try #require(try browser.evaluate("document.querySelectorAll('.cell .editor').length") as? Int)
        try browser.evaluate("[...document.querySelectorAll('header.bar button')].find(b => b.textContent === 'Run all').click()")
        try browser.wait("document.querySelectorAll('.cell.ok').length === \(code) || document.querySelector('.cell.error') !== null", seconds: 300)
        #expect(try browser.evaluate("document.querySelector('.cell.error') === null") as? Bool == true)
        #expect(try browser.evaluate("document.querySelectorAll('.outputs img').length") as? Int == 2)
        #expect(try browser.evaluate("document.querySelectorAll('.outputs svg').length") as? Int == 2)
        // From the schedule to the predictions: the part of the page that shows what ran.
        let height = try #require(try browser.evaluate("document.documentElement.scrollHeight") as? Int)
        let top = try #require(try browser.evaluate("document.querySelector('#cell-6').getBoundingClientRect().top + scrollY") as? Double)
        try browser.picture(to: "tour-page.png", clip: ["x": 0, "y": top - 8, "width": 1100, "height": min(Double(height) - top + 8, 2600), "scale": 1])
    }

    /// Markdown from a notebook that is not the reader's own cannot run script in the page (where
    /// it could use the token): attribute break-outs, javascript: links, raw script and handlers
    /// are all inert, and prose still shows, with `<` in code as written.
    @Test func markdownCannotRunScript() throws {
        let server = try ServerProcess(
            "browser-xss",
            text: """
                # %% [markdown] Hostile
                # ![x](a"onerror="window.pwned=1)
                # [link](javascript:window.pwned=2) and [fine](https://example.org/page)
                # <img src=x onerror="window.pwned=3"> <script>window.pwned=4</script>
                # ```js" onmouseover="window.pwned=5
                # code
                # ```
                # %% [markdown] Fine
                # Compare `a < b` here, *in* prose.
                # %%
                print(1)
                """)
        let browser = try Browser()
        try browser.call("Page.navigate", ["url": "http://127.0.0.1:\(server.port)/?token=\(server.token)"])
        try browser.wait("document.querySelectorAll('.cell').length === 3")
        usleep(300_000)  // time for an image's error handler, were there one
        #expect(try browser.evaluate("window.pwned === undefined") as? Bool == true)
        #expect(try browser.evaluate("document.querySelectorAll('.prose script, .prose [onerror], .prose [onmouseover]').length") as? Int == 0)
        #expect(try browser.evaluate("[...document.querySelectorAll('.prose a')].every(a => /^https?:/.test(a.getAttribute('href') || 'https:'))") as? Bool == true)
        #expect(try browser.evaluate("document.querySelector('.prose a[href]').getAttribute('href')") as? String == "https://example.org/page")
        let codes = try browser.evaluate("[...document.querySelectorAll('.prose code')].map(c => c.textContent).join('|')") as? String ?? ""
        #expect(codes.contains("a < b"), "\(codes)")
    }
}
