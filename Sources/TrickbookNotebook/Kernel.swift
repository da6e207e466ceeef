import Foundation
import TrickbookREPL
import TrickbookScript

/// Runs cells on one session, one at a time, on a thread of its own: the page's requests queue
/// here and what the cells show goes to `events`. The session is the one the REPL and
/// `trickbook run` use.
final class Kernel: @unchecked Sendable {
    enum Job {
        case run(id: Int, source: String, name: String, lineOffset: Int)
        case restart
        /// Puts back the state a snapshot holds (taken before cell `id` ran).
        case undo(id: Int, Session.Snapshot)
    }

    enum Event {
        case start(id: Int)
        case output(id: Int, Output)
        case done(id: Int, status: String, seconds: Double)
        case restarted
        /// Taken before cell `id` ran (nil: it would have held more than the limit).
        case snapshot(id: Int, Session.Snapshot?)
        case undone(id: Int, error: String?)
    }

    private let makeSession: () -> Session
    private var session: Session
    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var running: Int?
    private let events: (Event) -> Void
    /// The most one undo snapshot may hold.
    let snapshotLimit: Int

    /// `events` is called on the kernel's thread.
    init(makeSession: @escaping () -> Session, snapshotLimit: Int, events: @escaping (Event) -> Void) {
        self.makeSession = makeSession
        self.snapshotLimit = snapshotLimit
        self.events = events
        session = makeSession()
        connect(session)
        let thread = Thread { [unowned self] in loop() }
        thread.name = "trickbook kernel"
        thread.start()
    }

    /// The cell running now, if any.
    var current: Int? {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    func submit(_ job: Job) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Stops the running cell (as Ctrl-C does in the REPL: variables keep their values) and drops
    /// the cells queued after it. Returns the ids dropped.
    @discardableResult
    func interrupt() -> [Int] {
        condition.lock()
        defer { condition.unlock() }
        let dropped = jobs.compactMap { job -> Int? in if case .run(let id, _, _, _) = job { return id } else { return nil } }
        jobs.removeAll { if case .run = $0 { return true } else { return false } }
        if running != nil { session.interp.interrupt.set() }
        return dropped
    }

    private func connect(_ s: Session) {
        s.output = { [unowned self] text in
            if let id = current { events(.output(id: id, .text(text))) }
        }
        s.errorOutput = { [unowned self, unowned s] text in
            guard let id = current else { return }
            events(.output(id: id, .error(text, after: s.lastOutcome)))
        }
        s.display = { [unowned self] d in
            if let id = current { events(.output(id: id, Output(d))) }
        }
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            if case .run(let id, _, _, _) = job {
                // Cleared under the lock: an interrupt from now on is for this cell.
                session.interp.interrupt.clear()
                running = id
            }
            condition.unlock()
            switch job {
            case .run(let id, let source, let name, let lineOffset):
                if let take = session.takeSnapshot { events(.snapshot(id: id, take(snapshotLimit))) }
                events(.start(id: id))
                let start = Date()
                session.evaluate(source, name: name, lineOffset: lineOffset)
                events(.done(id: id, status: session.lastOutcome.status, seconds: Date().timeIntervalSince(start)))
            case .restart:
                let fresh = makeSession()
                connect(fresh)
                condition.lock()  // interrupt() reads it from the page's thread
                session = fresh
                condition.unlock()
                events(.restarted)
            case .undo(let id, let snapshot):
                do {
                    try snapshot.restore()
                    events(.undone(id: id, error: nil))
                } catch {
                    events(.undone(id: id, error: "\(error)"))
                }
            }
            condition.lock()
            running = nil
            condition.unlock()
        }
    }
}
