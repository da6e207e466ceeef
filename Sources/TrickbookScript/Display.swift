import Foundation

/// Rich output a builtin shows under its cell. A notebook page or an HTML report renders it; a
/// terminal has none (the builtin has printed its text form and written its file already).
public enum Display: Sendable {
    /// A chart.
    case svg(String)
    /// A picture: PNG bytes and the words that say what it shows.
    case png([UInt8], alt: String)
    /// A table: column names and rows of cell text.
    case table(columns: [String], rows: [[String]])
    /// A progress bar, drawn again in place for each update with the same `id`.
    case progress(id: Int, text: String, fraction: Double)
}

extension Interpreter {
    /// Whether anything receives rich output: builtins skip the work of making it when nothing does.
    public var showsRichOutput: Bool { display != nil }

    /// Sends rich output to the host (a notebook), if it shows any.
    public func show(_ d: @autoclosure () -> Display) {
        display?(d())
    }

    /// Shows a value the way it shows under a cell, when it has such a form and a notebook shows
    /// rich output (as Jupyter shows an object's HTML form); false when its text is to be printed.
    public func showRich(_ v: Value) -> Bool {
        guard let display, case .host(let o) = v, let d = o.hostType.rich?(o) else { return false }
        display(d)
        return true
    }
}
