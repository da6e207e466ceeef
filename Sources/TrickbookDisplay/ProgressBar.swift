import Foundation

/// A progress bar's state and text: steps done, images per second, ETA, running loss and accuracy.
public final class ProgressBar {
    public let total: Int, label: String
    public private(set) var done = 0, images = 0
    public private(set) var loss: Double?, acc: Double?
    let start = Date()
    var lastLine = Date.distantPast

    public init(total: Int, label: String) { self.total = max(1, total); self.label = label }

    /// Moves the bar on; the counts must be non-negative (a bar never goes back).
    public func advance(_ steps: Int, images: Int, loss: Double?, acc: Double?) {
        done = steps >= total - done ? total : done + max(0, steps)
        self.images = images >= Int.max - self.images ? Int.max : self.images + max(0, images)
        if let loss { self.loss = loss }
        if let acc { self.acc = acc }
    }

    /// Whether a line is due when the bar cannot be redrawn in place (every `seconds`).
    public func lineDue(every seconds: Double = 5) -> Bool {
        guard Date().timeIntervalSince(lastLine) > seconds else { return false }
        lastLine = Date()
        return true
    }

    public var text: String {
        let elapsed = Date().timeIntervalSince(start), rate = elapsed > 0 ? Double(images) / elapsed : 0
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let width = 24, filled = min(width, width * done / total)
        var s = "\(label) [\(String(repeating: "█", count: filled))\(String(repeating: "·", count: width - filled))] \(done)/\(total)"
        s += String(format: "  %.0f img/s  ETA %.0fs", rate, eta)
        if let loss { s += String(format: "  loss %.4f", loss) }
        if let acc { s += String(format: "  acc %.2f%%", acc * 100) }
        return s
    }
}
