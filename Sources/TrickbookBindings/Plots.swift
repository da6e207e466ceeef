import Foundation
import TrickbookScript

/// Line charts as SVG files, also drawn in the terminal; and a progress bar for loops over loaders.
extension Bindings {
    /// Series from a schedule, a list of numbers, a list of records (a history) or a map of lists.
    static func series(_ v: Value, steps: Int?) throws -> [(String, [Double])] {
        switch v {
        case .host(let s as ScheduleBox):
            return [("lr", s.s.values(steps ?? s.steps ?? 100).map(Double.init))]
        case .list(let l):
            if l.items.allSatisfy({ $0.number != nil }) { return [("value", l.items.compactMap(\.number))] }
            var keys: [String] = []
            // Every numeric field but the epoch number, which is the x axis.
            for case .map(let m) in l.items { for case .string(let k) in m.keys where !keys.contains(k) && k != "epoch" { keys.append(k) } }
            return keys.compactMap { k in
                let ys = l.items.compactMap { item -> Double? in
                    guard case .map(let m) = item, let v = try? m.get(.string(k)) else { return nil }
                    return v.number
                }
                return ys.isEmpty ? nil : (k, ys)
            }
        case .map(let m):
            return zip(m.keys, m.values).compactMap { k, v in
                guard case .string(let name) = k, case .list(let l) = v else { return nil }
                let ys = l.items.compactMap(\.number)
                return ys.isEmpty ? nil : (name, ys)
            }
        default:
            throw ScriptError("plot(): argument 'data' must be a schedule, a list of numbers or a history, got \(v.typeName)")
        }
    }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    static func svg(_ series: [(String, [Double])], title: String) -> String {
        let w = 640.0, h = 360.0, left = 60.0, right = 150.0, top = 30.0, bottom = 40.0
        let all = series.flatMap(\.1).filter { $0.isFinite }
        let lo = min(0, all.min() ?? 0), hi = max(all.max() ?? 1, lo + 1e-12)
        let n = max(2, series.map(\.1.count).max() ?? 2)
        func x(_ i: Int) -> Double { left + (w - left - right) * Double(i) / Double(n - 1) }
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (1 - (v - lo) / (hi - lo)) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(left)\" y=\"18\" font-size=\"14\">\(title)</text>\n"
        s += "<line x1=\"\(left)\" y1=\"\(y(lo))\" x2=\"\(w - right)\" y2=\"\(y(lo))\" stroke=\"black\"/><line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            s += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.3g", v))</text>\n"
        }
        s += "<text x=\"\(left)\" y=\"\(h - 12)\">0</text><text x=\"\(w - right)\" y=\"\(h - 12)\" text-anchor=\"end\">\(n - 1)</text>\n"
        for (k, (name, ys)) in series.enumerated() {
            let color = colors[k % colors.count]
            let pts = ys.enumerated().filter { $0.element.isFinite }.map { String(format: "%.1f,%.1f", x($0.offset), y($0.element)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts)\"/>\n"
            s += "<text x=\"\(w - right + 10)\" y=\"\(top + 18 * Double(k + 1))\" fill=\"\(color)\">\(name)</text>\n"
        }
        return s + "</svg>\n"
    }

    /// Compact charts of the series for the terminal: 8 rows, up to 60 columns each.
    static func terminalChart(_ series: [(String, [Double])]) -> String {
        guard !series.isEmpty else { return "(nothing to plot)" }
        return series.map { chart($0.0, $0.1) }.joined(separator: "\n")
    }

    static func chart(_ name: String, _ ys: [Double]) -> String {
        guard !ys.isEmpty else { return "\(name): (no points)" }
        let cols = min(60, ys.count), rows = 8
        let picked = (0..<cols).map { ys[$0 * ys.count / cols] }
        let lo = picked.filter(\.isFinite).min() ?? 0, hi = picked.filter(\.isFinite).max() ?? 1
        var grid = [[Character]](repeating: [Character](repeating: " ", count: cols), count: rows)
        for (c, v) in picked.enumerated() where v.isFinite {
            let r = hi > lo ? Int(((v - lo) / (hi - lo) * Double(rows - 1)).rounded()) : 0
            grid[rows - 1 - r][c] = "•"
        }
        var out = String(format: "%@  (max %.4g)\n", name, hi)
        out += grid.map { "  │" + String($0) }.joined(separator: "\n")
        out += String(format: "\n  └%@ (min %.4g, %d points)", String(repeating: "─", count: cols), lo, ys.count)
        return out
    }

    static func registerPlots(_ i: Interpreter) {
        i.row("plot(data, to = nil, title = \"\", steps = nil)", "A line chart of a schedule (its per-step rates), a list of numbers or a history, as an SVG file and in the terminal.",
              "plot(lr, to: \"lr.svg\")") { a in
            let s = try series(a[0], steps: a.isNil(3) ? nil : try a.int(3))
            if !a.isNil(1) {
                try writeAtomically(svg(s, title: try a.string(2)), to: try a.string(1), what: "plot()")
            }
            i.output(terminalChart(s))
            return .nil_
        }
        i.row("progress(total, label = \"\")", "A progress bar: p.update(n, loss: x, acc: y) after each batch, p.close() at the end.", "let p = progress(len(batches), \"epoch 1\")") { a in
            .host(Progress(total: try a.int(0), label: try a.string(1), output: { line in i.output(line) }))
        }
    }
}

/// A live bar on a terminal (rewritten in place); a line every few seconds otherwise.
final class Progress: HostObject {
    let total: Int, label: String
    let output: (String) -> Void
    var done = 0, images = 0
    var loss: Double?, acc: Double?
    let start = Date()
    var lastLine = Date.distantPast
    let tty = isatty(1) == 1
    init(total: Int, label: String, output: @escaping (String) -> Void) { self.total = max(1, total); self.label = label; self.output = output }
    var hostType: HostType { Progress.type }

    func text() -> String {
        let elapsed = Date().timeIntervalSince(start), rate = elapsed > 0 ? Double(images) / elapsed : 0
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let width = 24, filled = min(width, width * done / total)
        var s = "\(label) [\(String(repeating: "█", count: filled))\(String(repeating: "·", count: width - filled))] \(done)/\(total)"
        s += String(format: "  %.0f img/s  ETA %.0fs", rate, eta)
        if let loss { s += String(format: "  loss %.4f", loss) }
        if let acc { s += String(format: "  acc %.2f%%", acc * 100) }
        return s
    }

    static let type: HostType = {
        let t = HostType("progress", doc: "A progress bar with images/s, ETA and running loss and accuracy.")
        t.method(Progress.self, "update(n = 1, images = 0, loss = nil, acc = nil)", doc: "Advances the bar by n steps of `images` images.", example: "p.update(1, images: 128, loss: 0.71)") { p, a in
            p.done += try a.int(0)
            p.images += try a.int(1)
            if !a.isNil(2) { p.loss = try a.number(2) }
            if !a.isNil(3) { p.acc = try a.number(3) }
            if p.tty {
                FileHandle.standardOutput.write(("\r\u{1b}[K" + p.text()).data(using: .utf8) ?? Data())
            } else if Date().timeIntervalSince(p.lastLine) > 5 {
                p.lastLine = Date()
                p.output(p.text())
            }
            return .nil_
        }
        t.method(Progress.self, "close()", doc: "Ends the bar with a final line.", example: "p.close()") { p, _ in
            if p.tty { FileHandle.standardOutput.write("\r\u{1b}[K".data(using: .utf8) ?? Data()) }
            p.output(p.text())
            return .nil_
        }
        t.describe(Progress.self) { o in o.text() }
        return t
    }()
}
