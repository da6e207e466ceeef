import Foundation
import Ink
import TrickbookAssets

/// The notebook page: one HTML file with the stylesheet, the script and the notebook's data inside.
/// A report is this page with its data fixed; the live page adds the token the script connects
/// with. Nothing is fetched from the network (the content security policy forbids it).
enum Page {
    struct Meta: Encodable {
        let name: String
        let command: String?
        let seed: Int?
        let version: String
        let started: String?
    }

    private struct Data: Encodable {
        let meta: Meta
        let cells: [CellRecord]
        let live: Live?
    }

    struct Live: Encodable { let token: String }

    static func html(meta: Meta, cells: [CellRecord], live: Live?) -> String {
        let css = Assets.files["web/notebook.css"] ?? ""
        let js = Assets.files["web/notebook.js"] ?? ""
        let data = json(Data(meta: meta, cells: cells, live: live))
        // A report may only show what it holds; the live page may also open its WebSocket.
        let connect = live == nil ? "'none'" : "'self'"
        // Only the page's own script runs: it carries this nonce; no inline handler or
        // javascript: URL that markdown could smuggle in does.
        var g = SystemRandomNumberGenerator()
        let nonce = (0..<2).map { _ in String(format: "%016llx", g.next() as UInt64) }.joined()
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
            script-src 'nonce-\(nonce)'; connect-src \(connect); base-uri 'none'; form-action 'none'">
            <title>\(escaped(meta.name)) · trickbook</title>
            <style>
            \(css)
            </style>
            </head>
            <body>
            <header class="bar"><h1>\(escaped(meta.name))</h1><span class="actions"></span><span class="meta"></span></header>
            <main></main>
            <script type="application/json" id="tb-data">\(data)</script>
            <script nonce="\(nonce)">
            \(js)
            </script>
            </body>
            </html>

            """
    }

    /// JSON safe inside a script element: `<` only occurs in strings and becomes \u003c there.
    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Foundation.Data("{}".utf8)
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "<", with: "\\u003c")
    }

    /// Markdown prose as HTML. The page keeps only prose elements and safe links of it (Ink puts
    /// link targets into attributes as they are written).
    static func markdown(_ prose: String) -> String {
        MarkdownParser().html(from: prose)
    }

    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
