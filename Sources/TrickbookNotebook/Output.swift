import Foundation
import TrickbookREPL
import TrickbookScript

/// One output under a cell, as the page and the report receive it (JSON).
public enum Output: Encodable, Equatable {
    case text(String)
    /// An error's report; its place (the line and column within the cell) when it is in the cell.
    case error(String, line: Int?, column: Int?)
    case svg(String)
    case png(base64: String, alt: String)
    case table(columns: [String], rows: [[String]])
    case progress(id: Int, text: String, fraction: Double)

    public init(_ d: Display) {
        switch d {
        case .svg(let s): self = .svg(s)
        case .png(let bytes, let alt): self = .png(base64: Data(bytes).base64EncodedString(), alt: alt)
        case .table(let columns, let rows): self = .table(columns: columns, rows: rows)
        case .progress(let id, let text, let fraction): self = .progress(id: id, text: text, fraction: fraction)
        }
    }

    /// Bytes it holds, for the bounds on what a cell keeps.
    var size: Int {
        switch self {
        case .text(let s), .svg(let s): return s.utf8.count
        case .error(let s, _, _): return s.utf8.count
        case .png(let b, let alt): return b.utf8.count + alt.utf8.count
        case .table(let c, let r): return c.reduce(0) { $0 + $1.utf8.count } + r.reduce(0) { $0 + $1.reduce(0) { $0 + $1.utf8.count } }
        case .progress(_, let text, _): return text.utf8.count
        }
    }

    private enum Key: String, CodingKey { case kind, text, line, column, svg, png, alt, columns, rows, id, fraction }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch self {
        case .text(let s):
            try c.encode("text", forKey: .kind)
            try c.encode(s, forKey: .text)
        case .error(let s, let line, let column):
            try c.encode("error", forKey: .kind)
            try c.encode(s, forKey: .text)
            try c.encodeIfPresent(line, forKey: .line)
            try c.encodeIfPresent(column, forKey: .column)
        case .svg(let s):
            try c.encode("svg", forKey: .kind)
            try c.encode(s, forKey: .svg)
        case .png(let b, let alt):
            try c.encode("png", forKey: .kind)
            try c.encode(b, forKey: .png)
            try c.encode(alt, forKey: .alt)
        case .table(let columns, let rows):
            try c.encode("table", forKey: .kind)
            try c.encode(columns, forKey: .columns)
            try c.encode(rows, forKey: .rows)
        case .progress(let id, let text, let fraction):
            try c.encode("progress", forKey: .kind)
            try c.encode(id, forKey: .id)
            try c.encode(text, forKey: .text)
            try c.encode(fraction.isFinite ? fraction : 0, forKey: .fraction)
        }
    }
}

extension Output {
    /// An error's report as an output, with its place when the session's last outcome has one.
    static func error(_ text: String, after outcome: Session.Outcome) -> Output {
        if case .error(let line, let column) = outcome { return .error(text, line: line, column: column) }
        return .error(text, line: nil, column: nil)
    }
}

extension Session.Outcome {
    /// The cell's status as the page shows it.
    var status: String {
        switch self {
        case .ok: return "ok"
        case .error: return "error"
        case .interrupted: return "interrupted"
        }
    }
}

/// What a cell holds after it ran: its outputs (bounded) and how it ended.
public struct CellOutputs {
    public private(set) var outputs: [Output] = []
    public private(set) var bytes = 0
    /// Outputs left out once the cell held `limit` bytes (a cell that prints without end).
    public private(set) var dropped = 0
    public let limit: Int
    /// Where each progress bar is in `outputs`.
    private var progressAt: [Int: Int] = [:]

    public init(limit: Int = 8 << 20) { self.limit = limit }

    /// Adds an output; a progress bar's update replaces its previous state. Returns whether it was
    /// kept (false once the cell is over its limit).
    @discardableResult
    public mutating func add(_ o: Output) -> Bool {
        if case .progress(let id, _, _) = o, let k = progressAt[id] {
            bytes += o.size - outputs[k].size
            outputs[k] = o
            return true
        }
        guard bytes + o.size <= limit else {
            dropped += 1
            return false
        }
        bytes += o.size
        if case .progress(let id, _, _) = o { progressAt[id] = outputs.count }
        outputs.append(o)
        return true
    }

    /// The outputs, with a last line saying how many were left out.
    public var all: [Output] {
        dropped == 0 ? outputs : outputs + [.text("… \(dropped) more outputs left out (a cell keeps \(limit >> 20) MB)")]
    }
}

/// A cell's record for the page and the report.
struct CellRecord: Encodable {
    let id: Int
    let number: Int
    let kind: String
    let title: String
    let source: String
    /// Markdown cells: the prose as HTML.
    let html: String?
    let outputs: [Output]
    /// "ok", "error", "interrupted", "stale", "running", "queued", or nil (not run).
    let status: String?
    let seconds: Double?
}
