import Foundation

/// Reference cycles freed, as CPython's cycle collector frees them. Swift counts references, so a
/// list that contains itself, or a closure stored in the frame it closes over (a local function
/// that calls itself), is never freed by counting alone: a long session would grow without bound.
///
/// Lists, maps, functions and the frames closures capture are registered with the session that
/// made them. Between cells the collector runs trial deletion on them: each object's count of
/// strong references, minus the references other registered objects hold, is what the rest of the
/// program holds (globals, host objects, Swift code). Objects with some are live, and so is
/// everything they reach; the rest can only be reached from cycles among themselves, and their
/// contents are cleared, which frees them.
public enum CycleCollector {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var objects: [Int32: [ObjectIdentifier: Unmanaged<AnyObject>]] = [:]
    private static let ownerKey: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// The session whose run is on this thread (0: none; objects made then are not tracked).
    static var currentOwner: Int32 {
        get { Int32(truncatingIfNeeded: Int(bitPattern: pthread_getspecific(ownerKey))) }
        set { pthread_setspecific(ownerKey, UnsafeRawPointer(bitPattern: Int(newValue))) }
    }

    /// Runs `body` with objects made on this thread belonging to `owner`.
    static func owning<T>(_ owner: Int32, _ body: () throws -> T) rethrows -> T {
        let saved = currentOwner
        currentOwner = owner
        defer { currentOwner = saved }
        return try body()
    }

    static func register(_ o: AnyObject, owner: Int32) {
        lock.lock()
        objects[owner, default: [:]][ObjectIdentifier(o)] = Unmanaged.passUnretained(o)
        lock.unlock()
    }

    static func unregister(_ o: AnyObject, owner: Int32) {
        lock.lock()
        objects[owner]?.removeValue(forKey: ObjectIdentifier(o))
        lock.unlock()
    }

    static func count(owner: Int32) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return objects[owner]?.count ?? 0
    }

    static func forget(owner: Int32) {
        lock.lock()
        objects[owner] = nil
        lock.unlock()
    }

    /// What `_getRetainCount` reports for an object held by exactly one reference, measured the
    /// way the collector measures (through a strong reference made from an unretained one).
    private static let baseline: UInt = {
        let probe = ListRef([])
        let u = Unmanaged<AnyObject>.passUnretained(probe)
        let measured = _getRetainCount(u.takeUnretainedValue())
        withExtendedLifetime(probe) {}
        return measured
    }()

    /// Frees the cycles among `owner`'s objects; returns how many objects it cleared. Call only
    /// with no script of that session running (between cells), on that session's thread.
    @discardableResult
    static func collect(owner: Int32) -> Int {
        lock.lock()
        let refs = objects[owner].map { Array($0.values) } ?? []
        lock.unlock()
        guard !refs.isEmpty else { return 0 }
        // Keep every object alive while it is examined; the extra reference each holds is
        // subtracted below with the baseline.
        let all = refs.map { $0.takeUnretainedValue() }
        var index: [ObjectIdentifier: Int] = [:]
        for (k, o) in all.enumerated() { index[ObjectIdentifier(o)] = k }
        // References each object receives from the others.
        var inner = [Int](repeating: 0, count: all.count)
        for o in all { forEachChild(of: o) { c in if let k = index[ObjectIdentifier(c)] { inner[k] += 1 } } }
        // Held from outside the tracked objects: `all` holds one reference to each, and the
        // baseline (one reference) counts that one.
        var reachable = [Bool](repeating: false, count: all.count)
        var work: [Int] = []
        for (k, o) in all.enumerated() {
            let count = Int(_getRetainCount(o)) - Int(baseline)
            if count - inner[k] > 0 { reachable[k] = true; work.append(k) }
        }
        while let k = work.popLast() {
            forEachChild(of: all[k]) { c in
                if let j = index[ObjectIdentifier(c)], !reachable[j] { reachable[j] = true; work.append(j) }
            }
        }
        var cleared = 0
        for (k, o) in all.enumerated() where !reachable[k] {
            clear(o)
            cleared += 1
        }
        return cleared  // `all` goes here: the cleared objects are freed
    }

    /// The registered kinds of object another one holds.
    private static func forEachChild(of o: AnyObject, _ body: (AnyObject) -> Void) {
        func value(_ v: Value) {
            switch v {
            case .list(let l): body(l)
            case .map(let m): body(m)
            case .function(let f): body(f)
            default: break
            }
        }
        switch o {
        case let l as ListRef: l.items.forEach(value)
        case let m as MapRef:
            m.keys.forEach(value)
            m.values.forEach(value)
        case let f as Function: if let env = f.env { body(env) }
        case let fr as Frame:
            for i in 0..<fr.header.count { value(fr.slots[i]) }
            if let p = fr.parent { body(p) }
        default: break
        }
    }

    /// Drops what a garbage object holds (through the teardown worklist, without recursion).
    private static func clear(_ o: AnyObject) {
        switch o {
        case let l as ListRef:
            var items = l.items
            l.items = []
            Teardown.take(&items)
        case let m as MapRef: m.removeAll()
        case let fr as Frame:
            for i in 0..<fr.header.count { fr.slots[i] = .nil_ }
        default: break
        }
    }
}
