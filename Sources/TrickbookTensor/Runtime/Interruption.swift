import Foundation

/// Ctrl-C inside a long operation. The session that drives the engine installs how to ask
/// whether the user interrupted (the bindings install their interpreter's flag); long operations
/// check between blocks of work (row blocks of a large product, each module of a forward pass,
/// each node of a backward pass) and stop with `Interrupted`, so that Ctrl-C returns within a
/// block's time whatever is running.
public enum Interruption {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var hook: (() -> Bool)?

    /// The most recently installed check wins (the bindings install one that reads the flag of
    /// the session running on the calling thread).
    public static func install(_ isRequested: @escaping () -> Bool) {
        lock.lock()
        hook = isRequested
        lock.unlock()
    }

    public static var isRequested: Bool {
        lock.lock()
        let h = hook
        lock.unlock()
        return h?() ?? false
    }

    /// Throws `Interrupted` when the user asked to stop.
    @inline(__always)
    public static func check(_ op: String) throws {
        if isRequested { throw Interrupted(op: op) }
    }
}

/// Raised by a long operation that stopped because the user interrupted it.
public struct Interrupted: Error, CustomStringConvertible {
    public let op: String
    public var description: String { "interrupted during \(op)" }
}
