import Foundation
import TrickbookFiles
import TrickbookREPL

/// The notebook behind the page: the document, each cell's outputs and state, the kernel that runs
/// cells, and the pages connected to it. Requests come from the WebSocket as JSON; events go back
/// to every connected page, batched every 10 ms (a cell that prints 100,000 lines sends a few
/// hundred messages, not 100,000), and a progress bar at most 10 times a second.
final class NotebookHost: @unchecked Sendable {
    let path: String
    let name: String
    private let lock = NSLock()
    /// Held from taking a batch of events to having sent it (always taken before `lock`).
    private let sending = NSLock()
    private var document: Document
    /// The file's bytes as loaded or last saved (nil: not on disk yet), to notice edits made
    /// meanwhile by something else.
    private var onDisk: Data?
    private var outputs: [Int: CellOutputs] = [:]
    private var status: [Int: String] = [:]
    private var seconds: [Int: Double] = [:]
    private var clients: [Int: (String) -> Void] = [:]
    private var nextClient = 1
    /// Events waiting to go out, each to every page or (an answer) to the page that asked.
    private var outbox: [(event: Event, to: Int?)] = []
    private var progressSent: [Int: Date] = [:]
    private var progressHeld: [Int: (cell: Int, output: Output)] = [:]
    private var lastFlush = Date.distantPast
    /// Lines printed one after another by one cell, not yet in the outbox.
    private var textRun: (id: Int, lines: [String])?

    /// Adds an event after the printed lines before it (call with the lock held).
    private func post(_ e: Event, to client: Int? = nil) {
        closeTextRun()
        outbox.append((e, client))
    }

    /// Puts the pending printed lines into the outbox as one message (call with the lock held).
    private func closeTextRun() {
        guard let run = textRun else { return }
        textRun = nil
        outbox.append((Event(ev: "out", id: run.id, output: .text(run.lines.joined(separator: "\n"))), nil))
    }
    private var kernel: Kernel?
    /// The state before each cell last ran, for undo; the oldest go first beyond `snapshotLimit`.
    private var snapshots: [Int: Session.Snapshot] = [:]
    private var snapshotOrder: [Int] = []
    let snapshotLimit: Int
    /// Undo's default bound: 1 GiB, or an eighth of memory when that is less.
    static let defaultSnapshotLimit = Int(min(UInt64(1) << 30, ProcessInfo.processInfo.physicalMemory / 8))
    private var snapshotBytes: Int { snapshots.values.reduce(0) { $0 + $1.bytes } }

    /// Opens `path`, or a new notebook when no file is there yet. A folder, or a file that is not
    /// UTF-8 text (which a save could not give back byte for byte), is refused.
    init(path: String, snapshotLimit: Int = NotebookHost.defaultSnapshotLimit, makeSession: @escaping () -> Session) throws {
        self.path = path
        self.snapshotLimit = max(0, snapshotLimit)
        name = (path as NSString).lastPathComponent
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
            guard !isFolder.boolValue else { throw NotebookError("\(path) is a folder, not a notebook file") }
            guard let data = FileManager.default.contents(atPath: path) else { throw NotebookError("cannot read \(path)") }
            guard let text = String(data: data, encoding: .utf8) else {
                throw NotebookError("\(path) is not UTF-8 text: it is not opened, so that a save cannot change its bytes")
            }
            onDisk = data
            document = Document(text: text)
        } else {
            onDisk = nil
            document = Document(text: "# %%\n")
        }
        kernel = Kernel(makeSession: makeSession, snapshotLimit: snapshotLimit) { [unowned self] in kernelEvent($0) }
    }

    // MARK: Messages to the page

    struct Event: Encodable {
        var ev: String
        var id: Int?
        var output: Output?
        var status: String?
        var seconds: Double?
        var cells: [CellRecord]?
        var meta: Page.Meta?
        var html: String?
        var text: String?
        /// Bytes the undo snapshots hold, and their limit.
        var snapshots: Int?
        var snapshotLimit: Int?
    }

    /// Adds a page; `send` is called with each message's JSON. Returns its number for `disconnect`.
    func connect(_ send: @escaping (String) -> Void) -> Int {
        sending.lock()
        defer { sending.unlock() }
        deliver()  // what is waiting goes to the pages already here; the new one gets the state with it
        lock.lock()
        let k = nextClient
        nextClient += 1
        clients[k] = send
        let state = Event(ev: "notebook", cells: records(outputs: true), meta: meta)
        lock.unlock()
        send(Page.json(state))
        return k
    }

    func disconnect(_ k: Int) {
        lock.lock()
        clients[k] = nil
        lock.unlock()
    }

    var meta: Page.Meta { Page.Meta(name: name, command: nil, seed: nil, version: "trickbook \(trickbookVersion)", started: nil) }

    /// Every cell as the page draws it (call with the lock held). Without `outputs`, for a change
    /// of order or status: the page keeps the outputs it has drawn.
    private func records(outputs withOutputs: Bool = false) -> [CellRecord] {
        document.cells.enumerated().map { k, c in
            CellRecord(
                id: c.id, number: k + 1, kind: c.isMarkdown ? "markdown" : "code", title: c.title, source: c.source,
                html: c.isMarkdown ? Page.markdown(c.prose) : nil, outputs: withOutputs ? outputs[c.id]?.all ?? [] : [],
                status: status[c.id], seconds: seconds[c.id])
        }
    }

    /// Sends what is waiting (every 10 ms from the server's flusher, and at the end of a cell).
    func flush() {
        sending.lock()
        defer { sending.unlock() }
        deliver()
    }

    /// Takes what is waiting and sends it, with `sending` held: one batch at a time, so that no
    /// batch overtakes another (the kernel thread, the flusher and a new page all flush).
    private func deliver() {
        lock.lock()
        closeTextRun()
        let now = Date()
        lastFlush = now
        for (pid, held) in progressHeld where now.timeIntervalSince(progressSent[pid] ?? .distantPast) >= 0.1 {
            post(Event(ev: "out", id: held.cell, output: held.output))
            progressSent[pid] = now
            progressHeld[pid] = nil
        }
        let events = outbox, targets = clients
        outbox = []
        lock.unlock()
        for (e, to) in events {
            let json = Page.json(e)
            if let to { targets[to]?(json) } else { for send in targets.values { send(json) } }
        }
    }

    private func broadcast(_ e: Event) {
        lock.lock()
        post(e)
        lock.unlock()
    }

    /// An answer for the page that asked alone (every page when the asker is unknown).
    private func reply(_ client: Int?, _ e: Event) {
        lock.lock()
        post(e, to: client)
        lock.unlock()
    }

    // MARK: From the kernel (its thread)

    private func kernelEvent(_ e: Kernel.Event) {
        switch e {
        case .start(let id):
            lock.lock()
            outputs[id] = CellOutputs(limit: 32 << 20)
            status[id] = "running"
            seconds[id] = nil
            post(Event(ev: "start", id: id))
            lock.unlock()
        case .output(let id, let o):
            // A lone line goes out at once; lines that come faster wait for the next flush (10 ms),
            // which sends them together.
            var due = false
            defer { if due { flush() } }
            lock.lock()
            defer { lock.unlock() }
            due = Date().timeIntervalSince(lastFlush) > 0.01
            guard outputs[id, default: CellOutputs(limit: 32 << 20)].add(o) else { return }
            if case .progress(let pid, _, _) = o, Date().timeIntervalSince(progressSent[pid] ?? .distantPast) < 0.1 {
                progressHeld[pid] = (id, o)
                return
            }
            if case .progress(let pid, _, _) = o { progressSent[pid] = Date() }
            // Printed lines that follow each other in one cell go out as one message, joined once.
            if case .text(let t) = o {
                if textRun?.id == id {
                    textRun?.lines.append(t)  // in place: no copy of the lines so far
                } else {
                    closeTextRun()
                    textRun = (id, [t])
                }
            } else {
                post(Event(ev: "out", id: id, output: o))
            }
        case .done(let id, let st, let s):
            lock.lock()
            for (pid, held) in progressHeld where held.cell == id {
                post(Event(ev: "out", id: id, output: held.output))
                progressHeld[pid] = nil
            }
            for case .progress(let pid, _, _) in outputs[id]?.outputs ?? [] { progressSent[pid] = nil }
            if let dropped = outputs[id]?.dropped, dropped > 0, let last = outputs[id]?.all.last {
                post(Event(ev: "out", id: id, output: last))
            }
            status[id] = st
            seconds[id] = s
            post(Event(ev: "done", id: id, status: st, seconds: s, snapshots: snapshotBytes, snapshotLimit: snapshotLimit))
            lock.unlock()
            flush()
        case .snapshot(let id, let snapshot):
            lock.lock()
            // Without a new one (over the limit), the older snapshot of this cell would undo to a
            // state before its previous run: it goes too.
            snapshots[id] = snapshot
            snapshotOrder.removeAll { $0 == id }
            if snapshot != nil { snapshotOrder.append(id) } else {
                post(Event(ev: "notice", text: "no undo for this run: its snapshot would hold more than \(snapshotLimit >> 20) MB"))
            }
            while snapshotBytes > snapshotLimit, let oldest = snapshotOrder.first {
                snapshotOrder.removeFirst()
                snapshots[oldest] = nil
            }
            lock.unlock()
        case .undone(let id, let error):
            lock.lock()
            if let error {
                post(Event(ev: "notice", text: "undo failed: \(error)"))
            } else {
                // The cell's effects are gone, and what ran after it ran on them: all stale.
                if let k = document.index(of: id) {
                    for c in document.cells[k...] where status[c.id] != nil && status[c.id] != "queued" { status[c.id] = "stale" }
                }
                post(Event(ev: "cells", cells: records()))
                let number = (document.index(of: id) ?? 0) + 1
                post(Event(ev: "notice", text: "undid cell [\(number)]: models, optimizers and generators as before it ran"))
            }
            lock.unlock()
        case .restarted:
            lock.lock()
            status = [:]
            seconds = [:]
            snapshots = [:]
            snapshotOrder = []
            post(Event(ev: "cells", cells: records()))
            post(Event(ev: "notice", text: "restarted: a fresh session"))
            lock.unlock()
        }
    }

    // MARK: From the page

    /// Handles one request from a page (JSON text; `client` from `connect`). Bad requests are
    /// answered with a notice to that page.
    func handle(_ text: String, from client: Int? = nil) {
        guard let data = text.data(using: .utf8), let m = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let op = m["op"] as? String
        else { return reply(client, Event(ev: "notice", text: "a request that is not JSON with an 'op' was ignored")) }
        let id = (m["id"] as? NSNumber)?.intValue
        switch op {
        case "run":
            let ids = (m["ids"] as? [NSNumber])?.map(\.intValue) ?? []
            run(ids)
        case "interrupt":
            let dropped = kernel?.interrupt() ?? []
            lock.lock()
            for d in dropped { status[d] = nil }
            post(Event(ev: "cells", cells: records()))
            lock.unlock()
        case "restart":
            kernel?.interrupt()
            kernel?.submit(.restart)
        case "undo":
            guard let id else { return }
            lock.lock()
            let snapshot = snapshots[id]
            lock.unlock()
            guard let snapshot else {
                return reply(client, Event(ev: "notice", text: "nothing to undo for this cell: it has not run in this session, or its snapshot was dropped to stay under \(snapshotLimit >> 20) MB"))
            }
            kernel?.submit(.undo(id: id, snapshot))
        case "edit":
            guard let id, let source = m["source"] as? String else { return }
            lock.lock()
            document.edit(id, source: source)
            markStale(from: id)
            lock.unlock()
        case "render":
            guard let id else { return }
            lock.lock()
            let html = document.cell(id).map { Page.markdown($0.prose) }
            post(Event(ev: "rendered", id: id, html: html))
            lock.unlock()
        case "add":
            lock.lock()
            document.add(after: (m["after"] as? NSNumber)?.intValue, markdown: (m["kind"] as? String) == "markdown")
            post(Event(ev: "cells", cells: records()))
            lock.unlock()
        case "delete":
            guard let id else { return }
            lock.lock()
            document.delete(id)
            outputs[id] = nil
            status[id] = nil
            seconds[id] = nil
            snapshots[id] = nil
            snapshotOrder.removeAll { $0 == id }
            post(Event(ev: "cells", cells: records()))
            lock.unlock()
        case "move":
            guard let id, let by = (m["by"] as? NSNumber)?.intValue else { return }
            lock.lock()
            document.move(id, by: max(-1_000_000, min(1_000_000, by)))
            markStale(from: id)
            post(Event(ev: "cells", cells: records()))
            lock.unlock()
        case "save":
            let answer = save(force: (m["force"] as? Bool) ?? false)
            if answer.ev == "conflict" { reply(client, answer) } else { broadcast(answer) }  // only the page that saved is asked
        default:
            reply(client, Event(ev: "notice", text: "unknown request '\(op)'"))
        }
    }

    private func run(_ ids: [Int]) {
        lock.lock()
        var jobs: [Kernel.Job] = []
        for id in ids {
            guard let c = document.cell(id), !c.isMarkdown, let first = document.firstLine(of: id) else { continue }
            jobs.append(.run(id: id, source: c.source, name: path, lineOffset: first - 1))
            status[id] = "queued"
        }
        lock.unlock()
        for j in jobs { kernel?.submit(j) }
    }

    /// A cell that ran is stale once it or a cell above it changed (call with the lock held).
    private func markStale(from id: Int) {
        guard let k = document.index(of: id), !document.cells[k].isMarkdown else { return }
        for c in document.cells[k...] where ["ok", "error", "interrupted"].contains(status[c.id] ?? "") { status[c.id] = "stale" }
    }

    /// Writes the notebook back to its file (a temporary name, then a rename). A file changed on
    /// disk since it was loaded or saved is not overwritten unless `force`.
    func save(force: Bool) -> Event {
        lock.lock()
        defer { lock.unlock() }
        let now = FileManager.default.contents(atPath: path)
        if !force, now != onDisk {
            return Event(ev: "conflict", text: "\(name) changed on disk since it was opened here: not saved. Overwrite it?")
        }
        let text = document.text
        do {
            try writeAtomically(text, to: path)
        } catch {
            return Event(ev: "notice", text: "not saved: \(error)")
        }
        onDisk = Data(text.utf8)
        return Event(ev: "notice", text: "saved \(name)")
    }
}
