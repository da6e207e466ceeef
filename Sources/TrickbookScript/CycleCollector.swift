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

    /// Frees the cycles among `owner`'s objects; returns how many objects it cleared. Call only
    /// with no script of that session running (between cells), on that session's thread.
    @discardableResult
    static func collect(owner: Int32) -> Int {
        lock.lock()
        let refs = objects[owner].map { Array($0.values) } ?? []
        lock.unlock()
        guard !refs.isEmpty else { return 0 }
        // Every object is kept alive by `all` while it is examined. A fresh probe, held by `all`
        // alone, is measured along the same path: what it reports is what one reference reads
        // as here, whatever retains the compiler adds or removes.
        var all = refs.map { $0.takeUnretainedValue() }
        all.append(ListRef([]))
        let probe = all.count - 1
        var index: [ObjectIdentifier: Int] = [:]
        for (k, o) in all.enumerated() { index[ObjectIdentifier(o)] = k }
        // References each object receives from the others. Arrays are copy-on-write: two lists
        // (a list and its copy) can share one buffer, which holds each element once, so each
        // buffer is counted once.
        // Objects that are not registered but hold script values (host objects, bound methods) are
        // added as they are found, so that a cycle through them is seen too.
        var inner = [Int](repeating: 0, count: all.count)
        var buffers = Set<UnsafeRawPointer>()
        var next = 0
        while next < all.count {
            forEachChild(of: all[next], buffers: &buffers) { c in
                if let k = index[ObjectIdentifier(c)] {
                    inner[k] += 1
                } else if c is CycleTraversable || c is Builtin {
                    index[ObjectIdentifier(c)] = all.count
                    all.append(c)
                    inner.append(1)
                }
            }
            next += 1
        }
        var counts = [Int](repeating: 0, count: all.count)
        for k in all.indices { counts[k] = Int(_getRetainCount(all[k])) }
        let one = counts[probe]
        // Held from outside the tracked objects (globals, host objects, Swift code): live.
        var reachable = [Bool](repeating: false, count: all.count)
        reachable[probe] = true
        var work: [Int] = []
        for k in all.indices where k != probe && counts[k] - one - inner[k] > 0 {
            reachable[k] = true
            work.append(k)
        }
        var seen = Set<UnsafeRawPointer>()
        while let k = work.popLast() {
            forEachChild(of: all[k], buffers: &seen, countShared: false) { c in
                if let j = index[ObjectIdentifier(c)], !reachable[j] { reachable[j] = true; work.append(j) }
            }
        }
        var cleared = 0
        for k in all.indices where !reachable[k] {
            clear(all[k])
            cleared += 1
        }
        return cleared  // `all` goes here: the cleared objects are freed
    }

    /// The registered kinds of object another one holds. With `countShared` an array buffer
    /// already in `buffers` is skipped (its elements were counted with another container).
    private static func forEachChild(of o: AnyObject, buffers: inout Set<UnsafeRawPointer>, countShared: Bool = true,
                                     _ body: (AnyObject) -> Void) {
        func value(_ v: Value) {
            switch v {
            case .list(let l): body(l)
            case .map(let m): body(m)
            case .function(let f): body(f)
            case .builtin(let b) where b.receiver != nil: body(b)
            case .host(let h as CycleTraversable): body(h)
            default: break
            }
        }
        func array(_ a: [Value]) {
            guard !a.isEmpty else { return }
            if countShared {
                let first = a.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
                if let first, !buffers.insert(first).inserted { return }
            }
            a.forEach(value)
        }
        switch o {
        case let l as ListRef: array(l.items)
        case let m as MapRef:
            array(m.keys)
            array(m.values)
        case let f as Function: if let env = f.env { body(env) }
        case let fr as Frame:
            for i in 0..<fr.header.count { value(fr.slots[i]) }
            if let p = fr.parent { body(p) }
        case let b as Builtin: if let r = b.receiver { value(r) }
        case let t as CycleTraversable:
            var held = CycleReferences()
            t.traverse(into: &held)
            held.values.forEach(value)
            held.objects.forEach(body)
        default: break
        }
    }

    /// Drops what a garbage object holds, through the teardown worklist. Host objects and bound
    /// methods are left as they are: clearing the script containers of their cycle frees them.
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

/// A Swift object that holds script values, directly or through objects it owns (a model whose
/// forward is a script function, the box that holds it): the cycle collector looks through it, as
/// CPython's looks through an extension type's `tp_traverse`.
public protocol CycleTraversable: AnyObject {
    /// Adds each strong reference this object holds to a script value or to another traversable
    /// object, once per reference. Never add a reference the object does not hold (the collector
    /// could then free a live object); leaving one out only keeps its cycle alive.
    func traverse(into held: inout CycleReferences)
}

public struct CycleReferences {
    fileprivate var values: [Value] = []
    fileprivate var objects: [AnyObject] = []
    public mutating func add(_ v: Value) { values.append(v) }
    public mutating func add(_ o: CycleTraversable) { objects.append(o) }
}
