import Foundation

/// One line of a chart: a name, its values and where they are on the x axis (their positions
/// from 0 when not given).
public struct Series {
    public let name: String
    public let values: [Double]
    public let xs: [Double]?
    public init(_ name: String, _ values: [Double], xs: [Double]? = nil) {
        self.name = name
        self.values = values
        self.xs = xs.flatMap { $0.count == values.count ? $0 : nil }
    }
    func x(_ i: Int) -> Double { xs?[i] ?? Double(i) }
}

/// What a chart's axes say: their titles, and whether each is logarithmic (for a value that spans
/// decades: a loss scale, the learning rate of a range test).
public struct Axes {
    public var x: String, y: String, logY: Bool, logX: Bool
    public init(x: String = "", y: String = "", logY: Bool = false, logX: Bool = false) { (self.x, self.y, self.logY, self.logX) = (x, y, logY, logX) }
}

/// Line charts and histograms: as SVG for a file or a notebook, and as text for the terminal.
public enum Chart {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    static let (width, height, left, right, top, bottom) = (680.0, 380.0, 70.0, 170.0, 34.0, 52.0)

    /// An SVG line chart of the series (points that are not finite, or not positive on a log
    /// axis, are left out).
    public static func svg(_ series: [Series], title: String, axes: Axes = Axes()) -> String {
        let ys = series.flatMap(\.values).filter { $0.isFinite && (!axes.logY || $0 > 0) }
        let xs = series.flatMap { s in s.values.indices.map { s.x($0) } }.filter { $0.isFinite && (!axes.logX || $0 > 0) }
        let xr = axes.logX ? logRange(xs) : span(xs.min() ?? 0, xs.max() ?? 1)
        let yr = axes.logY ? logRange(ys) : linearRange(ys)
        var s = frame(title: title, axes: axes, x: xr, y: yr)
        for (k, line) in series.enumerated() {
            let color = colors[k % colors.count]
            let pts = line.values.indices.compactMap { i -> String? in
                let v = line.values[i], x = line.x(i)
                guard v.isFinite, x.isFinite, !axes.logY || v > 0, !axes.logX || x > 0 else { return nil }
                return String(format: "%.1f,%.1f", px(axes.logX ? log10(x) : x, xr), py(axes.logY ? log10(v) : v, yr))
            }
            // A single point is drawn as a dot (a polyline of one point draws nothing).
            if pts.count == 1 {
                let xy = pts[0].split(separator: ",")
                s += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(color)\"/>\n"
            } else {
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
            }
            s += legend(k, line.name, color)
        }
        return s + "</svg>\n"
    }

    /// An SVG histogram of each series' values over `bins` equal bins of one range (`range`, else
    /// the values' own), as the share of its values in each bin, so that sets of different sizes
    /// compare; several series are drawn as outlines over one another.
    public static func histogramSVG(_ series: [Series], bins: Int, range: ClosedRange<Double>? = nil, title: String, x: String) -> String {
        let (edges, shares) = histogram(series, bins: bins, range: range)
        let xr = span(edges.first ?? 0, edges.last ?? 1)
        let yr = span(0, max(1e-9, shares.flatMap { $0 }.max() ?? 1) * 1.05)
        var s = frame(title: title, axes: Axes(x: x, y: "share of values"), x: xr, y: yr)
        for (k, share) in shares.enumerated() {
            let color = colors[k % colors.count]
            if shares.count == 1 {
                for (b, v) in share.enumerated() where v > 0 {
                    let x0 = px(edges[b], xr), x1 = px(edges[b + 1], xr), y0 = py(v, yr)
                    s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\" fill-opacity=\"0.7\"/>\n",
                                x0, y0, max(0.5, x1 - x0 - 1), py(0, yr) - y0, color)
                }
            } else {
                var pts = [String(format: "%.1f,%.1f", px(edges[0], xr), py(0, yr))]
                for (b, v) in share.enumerated() {
                    pts.append(String(format: "%.1f,%.1f %.1f,%.1f", px(edges[b], xr), py(v, yr), px(edges[b + 1], xr), py(v, yr)))
                }
                pts.append(String(format: "%.1f,%.1f", px(edges[share.count], xr), py(0, yr)))
                s += "<polyline fill=\"\(color)\" fill-opacity=\"0.15\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>\n"
            }
            s += legend(k, series[k].name, color)
        }
        return s + "</svg>\n"
    }

    /// The bins' edges (bins + 1) and each series' share of its finite values in each bin.
    public static func histogram(_ series: [Series], bins: Int, range: ClosedRange<Double>? = nil) -> (edges: [Double], shares: [[Double]]) {
        let n = max(1, bins)
        let all = series.flatMap(\.values).filter(\.isFinite)
        let r = range ?? ((all.min() ?? 0)...(all.max() ?? 1))
        let lo = r.lowerBound, width = (r.upperBound - r.lowerBound) > 0 ? (r.upperBound - r.lowerBound) / Double(n) : 1
        let edges = (0...n).map { lo + width * Double($0) }
        let shares = series.map { s -> [Double] in
            var counts = [Double](repeating: 0, count: n)
            var total = 0.0
            for v in s.values where v.isFinite {
                total += 1
                let f = ((v - lo) / width).rounded(.down)
                // Values outside the range are counted at its ends.
                let b = f.isFinite ? Int(min(Double(n - 1), max(0, f))) : 0
                counts[b] += 1
            }
            return total > 0 ? counts.map { $0 / total } : counts
        }
        return (edges, shares)
    }

    /// A histogram for the terminal: one row per bin (at most 16) with a bar per series.
    public static func terminalHistogram(_ series: [Series], bins: Int, range: ClosedRange<Double>? = nil, x: String) -> String {
        let (edges, shares) = histogram(series, bins: min(16, max(1, bins)), range: range)
        let most = max(1e-9, shares.flatMap { $0 }.max() ?? 1)
        var out = x.isEmpty ? "" : "\(x) (share of values)\n"
        for b in 0..<(edges.count - 1) {
            let label = String(format: "%9.3g to %-9.3g", edges[b], edges[b + 1])
            let bars = shares.enumerated().map { k, s in
                let mark: Character = ["█", "░", "▒", "▓"][k % 4]
                return String(repeating: mark, count: Int((s[b] / most * 40).rounded())).padding(toLength: 40, withPad: " ", startingAt: 0)
            }
            out += "  \(label) │\(bars.joined(separator: " "))\n"
        }
        if series.count > 1 { out += "  " + series.enumerated().map { "\(["█", "░", "▒", "▓"][$0.offset % 4]) \($0.element.name)" }.joined(separator: "   ") }
        return out
    }

    /// Compact charts of the series for the terminal: 8 rows, up to 60 columns each.
    public static func terminal(_ series: [Series], axes: Axes = Axes()) -> String {
        guard !series.isEmpty else { return "(nothing to plot)" }
        let head = axes.y.isEmpty && axes.x.isEmpty ? "" : "\(axes.y.isEmpty ? "value" : axes.y)\(axes.logY ? " (log scale)" : "") against \(axes.x.isEmpty ? "position" : axes.x)\(axes.logX ? " (log scale)" : "")\n"
        return head + series.map { dots($0.name, axes.logY ? $0.values.map { $0 > 0 ? log10($0) : .nan } : $0.values, log: axes.logY) }.joined(separator: "\n")
    }

    static func dots(_ name: String, _ ys: [Double], log: Bool = false) -> String {
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
        let shown = { (v: Double) in log ? pow(10, v) : v }
        var out = String(format: "%@  (max %.4g)\n", name, shown(hi))
        out += grid.map { "  │" + String($0) }.joined(separator: "\n")
        out += String(format: "\n  └%@ (min %.4g, %d points)", String(repeating: "─", count: cols), shown(lo), ys.count)
        return out
    }

    // MARK: Drawing

    /// A range that is not empty.
    static func span(_ lo: Double, _ hi: Double) -> ClosedRange<Double> {
        guard lo.isFinite, hi.isFinite else { return 0...1 }
        return hi > lo ? lo...hi : (lo - 0.5)...(lo + 0.5)
    }

    /// A linear y range: from 0 when the values are positive and 0 is near, else from a little
    /// below the least value; to a little above the largest.
    static func linearRange(_ ys: [Double]) -> ClosedRange<Double> {
        guard let lo = ys.min(), let hi = ys.max() else { return 0...1 }
        let margin = (hi - lo) * 0.05
        let from = lo >= 0 && lo <= 0.4 * hi ? 0 : lo - margin
        return span(from, hi + margin)
    }

    /// A log y range in decades (log10 of the values): whole decades around them.
    static func logRange(_ ys: [Double]) -> ClosedRange<Double> {
        guard let lo = ys.min(), let hi = ys.max() else { return 0...1 }
        return span(log10(lo).rounded(.down), max(log10(hi).rounded(.up), log10(lo).rounded(.down) + 1))
    }

    static func px(_ x: Double, _ r: ClosedRange<Double>) -> Double {
        left + (width - left - right) * (x - r.lowerBound) / (r.upperBound - r.lowerBound)
    }

    static func py(_ y: Double, _ r: ClosedRange<Double>) -> Double {
        let f = (y - r.lowerBound) / (r.upperBound - r.lowerBound)
        return top + (height - top - bottom) * (1 - min(1, max(0, f.isFinite ? f : 0)))
    }

    /// About `count` round values (1, 2 or 5 times a power of ten apart) in the range.
    static func ticks(_ r: ClosedRange<Double>, count: Int = 5) -> [Double] {
        let raw = (r.upperBound - r.lowerBound) / Double(max(1, count))
        guard raw.isFinite, raw > 0 else { return [r.lowerBound] }
        let p = pow(10, log10(raw).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= raw } ?? 10 * p
        let first = (r.lowerBound / step).rounded(.up) * step
        return stride(from: first, through: r.upperBound + step * 1e-9, by: step).prefix(20).map { abs($0) < step * 1e-9 ? 0 : $0 }
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e6 { return String(Int(v)) }
        return String(format: "%.3g", v)
    }

    /// Ticks of a log axis (its range in decades): whole decades, at most about six.
    static func decades(_ r: ClosedRange<Double>) -> [Double] {
        Array(stride(from: r.lowerBound, through: r.upperBound, by: max(1, ((r.upperBound - r.lowerBound) / 6).rounded(.up))))
    }

    /// A decade's label: 10^v written out when short, else as 1eV.
    static func decadeLabel(_ v: Double) -> String { abs(v) <= 4 ? label(pow(10, v)) : "1e\(Int(v))" }

    /// The SVG's start: background, title, axes with their ticks and titles.
    static func frame(title: String, axes: Axes, x xr: ClosedRange<Double>, y yr: ClosedRange<Double>) -> String {
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(left)\" y=\"20\" font-size=\"15\">\(escaped(title))</text>\n"
        let x0 = left, x1 = width - right, y0 = height - bottom, y1 = top
        s += "<line x1=\"\(x0)\" y1=\"\(y0)\" x2=\"\(x1)\" y2=\"\(y0)\" stroke=\"black\"/>"
        s += "<line x1=\"\(x0)\" y1=\"\(y1)\" x2=\"\(x0)\" y2=\"\(y0)\" stroke=\"black\"/>\n"
        for v in axes.logY ? decades(yr) : ticks(yr) {
            let y = py(v, yr)
            let text = axes.logY ? decadeLabel(v) : label(v)
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", x0, y, x1, y)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", x0 - 6, y + 4, text)
        }
        for v in axes.logX ? decades(xr) : ticks(xr) {
            let x = px(v, xr)
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>", x, y0, x, y0 + 4)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", x, y0 + 17, axes.logX ? decadeLabel(v) : label(v))
        }
        if !axes.x.isEmpty {
            let xTitle = axes.x + (axes.logX ? " (log scale)" : "")
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", (x0 + x1) / 2, height - 10, escaped(xTitle))
        }
        if !axes.y.isEmpty {
            let yTitle = axes.y + (axes.logY ? " (log scale)" : "")
            s += String(format: "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">%@</text>\n", (y0 + y1) / 2, escaped(yTitle))
        }
        return s
    }

    static func legend(_ k: Int, _ name: String, _ color: String) -> String {
        String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"%@\">%@</text>\n", width - right + 10, top + 18 * Double(k + 1), color, escaped(name))
    }

    /// Text safe inside SVG.
    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
