import Foundation
import TrickbookFiles
import TrickbookREPL
import TrickbookScript

/// trickbook's version, shown by `--version`, in reports and on the page.
public let trickbookVersion = "0.4.0"

/// `trickbook run FILE --html report.html`: the run as the notebook page shows it, in one file
/// that opens offline. What a cell prints still goes to the terminal as without a report.
public final class Report {
    private let notebook: Notebook
    private let session: Session
    private var records: [CellRecord] = []
    private var current = CellOutputs()
    private let started = Date()
    private var lastProgressLine = Date.distantPast
    private var finishedBars: Set<Int> = []
    /// Where the session printed before the report took over (the terminal).
    private let terminal: (String) -> Void

    /// Takes over the session's outputs: each is recorded for the report and passed on to where
    /// it went before.
    public init(notebook: Notebook, session: Session) {
        self.notebook = notebook
        self.session = session
        let print = session.output, printError = session.errorOutput
        terminal = print
        session.output = { [unowned self] text in
            current.add(.text(text))
            print(text)
        }
        session.errorOutput = { [unowned self, unowned session] text in
            current.add(.error(text, after: session.lastOutcome))
            printError(text)
        }
        session.display = { [unowned self] d in
            current.add(Output(d))
            // A terminal still sees a training run move: a progress line every few seconds, and one
            // when a bar is full.
            if case .progress(let id, let text, let fraction) = d,
                fraction >= 1 ? finishedBars.insert(id).inserted : Date().timeIntervalSince(lastProgressLine) > 5 {
                lastProgressLine = Date()
                print(text)
            }
        }
    }

    /// Runs one cell, recording what it shows. Returns whether it succeeded.
    public func run(_ cell: Notebook.Cell) -> Bool {
        current = CellOutputs()
        terminal(session.header(cell))  // the page has its own
        let start = Date()
        var ok = true
        if cell.isMarkdown {
            terminal(cell.prose)
        } else {
            ok = session.evaluate(cell.source, name: notebook.name, lineOffset: cell.firstLine - 1)
        }
        let seconds = Date().timeIntervalSince(start)
        let status = cell.isMarkdown ? "ok" : session.lastOutcome.status
        records.append(record(cell, outputs: cell.isMarkdown ? [] : current.all, status: status, seconds: cell.isMarkdown ? nil : seconds))
        return ok
    }

    /// Cells that did not run (after a failure) are in the report too, without outputs.
    public func skipped(_ cell: Notebook.Cell) {
        records.append(record(cell, outputs: [], status: nil, seconds: nil))
    }

    private func record(_ cell: Notebook.Cell, outputs: [Output], status: String?, seconds: Double?) -> CellRecord {
        CellRecord(
            id: cell.number, number: cell.number, kind: cell.isMarkdown ? "markdown" : "code", title: cell.title,
            source: cell.isMarkdown ? cell.source : cell.source.trimmingCharacters(in: .newlines),
            html: cell.isMarkdown ? Page.markdown(cell.prose) : nil, outputs: outputs, status: status, seconds: seconds)
    }

    /// Writes the report (a temporary name, then a rename).
    public func write(to path: String, command: String, seed: Int) throws {
        let stamp = ISO8601DateFormatter().string(from: started)
        let meta = Page.Meta(
            name: (notebook.name as NSString).lastPathComponent, command: command, seed: seed, version: "trickbook \(trickbookVersion)",
            started: stamp)
        try writeAtomically(Page.html(meta: meta, cells: records, live: nil), to: path)
    }
}
