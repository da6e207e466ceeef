import Foundation

/// Freeing values without recursion. A list inside a list inside a list… is freed by Swift one
/// level inside the other, so 100,000 levels (easy to build in a loop) would overflow the stack.
/// Containers and frames hand what they hold to a per-thread worklist instead, and the outermost
/// free drains it in a loop.
enum Teardown {
    final class State {
        var pending: [Value] = []
        var draining = false
    }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in
            guard let p else { return }
            Unmanaged<State>.fromOpaque(p).release()
        }
        return k
    }()

    static var state: State {
        if let p = pthread_getspecific(key) { return Unmanaged<State>.fromOpaque(p).takeUnretainedValue() }
        let s = State()
        pthread_setspecific(key, Unmanaged.passRetained(s).toOpaque())
        return s
    }

    /// Takes `values` (emptying it) when some of them can hold further values; the caller's own
    /// free then goes no deeper than one level.
    static func take(_ values: inout [Value]) {
        guard values.contains(where: \.canNest) else { return }
        let s = state
        s.pending.append(contentsOf: values)
        values = []
        drain(s)
    }

    /// The same for `count` values at `p`, which are deinitialized (moved out).
    static func take(_ p: UnsafeMutablePointer<Value>, count: Int) {
        guard (0..<count).contains(where: { p[$0].canNest }) else {
            p.deinitialize(count: count)
            return
        }
        let s = state
        for i in 0..<count { s.pending.append((p + i).move()) }
        drain(s)
    }

    private static func drain(_ s: State) {
        guard !s.draining else { return }
        s.draining = true
        // Dropping each value may free containers, which append what they hold here instead of
        // freeing it inside their own deinit.
        while let v = s.pending.popLast() { withExtendedLifetime(v) {} }
        s.draining = false
    }
}

extension Value {
    /// Whether freeing this value can free further values (the recursion Teardown avoids).
    var canNest: Bool {
        switch self {
        case .list, .map, .function, .builtin: return true
        default: return false
        }
    }

    /// Whether a container holding this value can be part of a reference cycle (see CycleCollector).
    var canLeadBack: Bool {
        if case .host(let o) = self { return o is CycleTraversable }
        return canNest
    }
}
