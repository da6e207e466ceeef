import Foundation

/// One line of a chart: a name and its values (x is the position).
public struct Series {
    public let name: String
    public let values: [Double]
    public init(_ name: String, _ values: [Double]) { self.name = name; self.values = values }
}

/// Line charts: as SVG for a file or a notebook, and as dots for the terminal.
public enum Chart {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    /// An SVG line chart of the series on one axis (non-finite points are left out).
    public static func svg(_ series: [Series], title: String) -> String {
        let w = 640.0, h = 360.0, left = 60.0, right = 150.0, top = 30.0, bottom = 40.0
        let all = series.flatMap(\.values).filter { $0.isFinite }
        let lo = min(0, all.min() ?? 0), hi = max(all.max() ?? 1, lo + 1e-12)
        let span = (hi - lo).isFinite ? hi - lo : .greatestFiniteMagnitude
        let n = max(2, series.map(\.values.count).max() ?? 2)
        func x(_ i: Int) -> Double { left + (w - left - right) * Double(i) / Double(n - 1) }
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (1 - min(1, max(0, v / span - lo / span))) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(left)\" y=\"18\" font-size=\"14\">\(escaped(title))</text>\n"
        s += "<line x1=\"\(left)\" y1=\"\(y(lo))\" x2=\"\(w - right)\" y2=\"\(y(lo))\" stroke=\"black\"/>"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            s += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.3g", v))</text>\n"
        }
        s += "<text x=\"\(left)\" y=\"\(h - 12)\">0</text><text x=\"\(w - right)\" y=\"\(h - 12)\" text-anchor=\"end\">\(n - 1)</text>\n"
        for (k, line) in series.enumerated() {
            let color = colors[k % colors.count]
            let pts = line.values.enumerated().filter { $0.element.isFinite }.map { String(format: "%.1f,%.1f", x($0.offset), y($0.element)) }
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
            s += "<text x=\"\(w - right + 10)\" y=\"\(top + 18 * Double(k + 1))\" fill=\"\(color)\">\(escaped(line.name))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// Compact charts of the series for the terminal: 8 rows, up to 60 columns each.
    public static func terminal(_ series: [Series]) -> String {
        guard !series.isEmpty else { return "(nothing to plot)" }
        return series.map { dots($0.name, $0.values) }.joined(separator: "\n")
    }

    static func dots(_ name: String, _ ys: [Double]) -> String {
        guard !ys.isEmpty else { return "\(name): (no points)" }
        let cols = min(60, ys.count), rows = 8
        let picked = (0..<cols).map { ys[$0 * ys.count / cols] }
        let lo = picked.filter(\.isFinite).min() ?? 0, hi = picked.filter(\.isFinite).max() ?? 1
        var grid = [[Character]](repeating: [Character](repeating: " ", count: cols), count: rows)
        for (c, v) in picked.enumerated() where v.isFinite {
            // (v − lo)/(hi − lo) in [0, 1] unless hi − lo overflows to inf; clamped before Int().
            let f = hi > lo ? (v - lo) / (hi - lo) : 0
            let r = f.isFinite ? Int((min(1, max(0, f)) * Double(rows - 1)).rounded()) : 0
            grid[rows - 1 - r][c] = "•"
        }
        var out = String(format: "%@  (max %.4g)\n", name, hi)
        out += grid.map { "  │" + String($0) }.joined(separator: "\n")
        out += String(format: "\n  └%@ (min %.4g, %d points)", String(repeating: "─", count: cols), lo, ys.count)
        return out
    }

    /// Text safe inside SVG.
    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
