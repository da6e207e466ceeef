// The VM's data: its stack of registers and the records of the running calls (VM.swift runs
// them).

import Foundation

/// The VM's registers: segments of 4,096 values allocated as calls need them (a session that
/// calls little holds little), every element always initialised (nil where no call is using it),
/// never moved, so that a window's address stays valid across calls; a window never straddles two
/// segments. And the records of the running calls.
final class ValueStack {
    static let segmentSize = 4096
    private var segments: [UnsafeMutablePointer<Value>] = []
    /// `segments.count`, read as a plain field (the array's count was a call on every window).
    private var segmentCount = 0
    /// The first position no running call uses (a segment's number times `segmentSize`, plus the
    /// place in it).
    var top = 0
    /// The running calls of compiled code, innermost last, and how many there are.
    private(set) var calls: UnsafeMutablePointer<Call>
    var callCount = 0
    private var callCapacity = 0

    /// Functions and builtins a global held when it was given another value while compiled code
    /// ran: a call made by `callGlobal` holds its callee without a reference count, so a function
    /// that replaces itself (or is replaced by a callee, or by a script a builtin calls back)
    /// must live until its call ends. Let go when the VM is left, and pruned to the running
    /// functions when there are many.
    var retired: [Value] = []

    /// The `try`s running in compiled code, innermost last: the call they are in (its index in
    /// `calls`), where their handler starts, the register that gets the error, and the call
    /// depth to go back to.
    var handlers: [(call: Int, pc: Int, error: Int, depth: Int)] = [] {
        didSet { innermostTry = handlers.last?.call ?? -1 }
    }
    /// The call of the innermost `try` (-1: none): what a return checks, without the array.
    private(set) var innermostTry = -1

    /// An empty array whose buffer a builtin's arguments are copied into (`callBuiltin`).
    var arguments: [Value] = []

    /// A register outside every window, nil between instructions: where a value goes on its
    /// way into a register that holds what it comes from.
    let spare: UnsafeMutablePointer<Value>

    init() {
        calls = .allocate(capacity: 1)
        spare = .allocate(capacity: 1)
        spare.initialize(to: .nil_)
    }

    /// Ends the innermost `n` tries of the running call (never those of a caller).
    func endTries(_ n: Int) {
        var n = n
        while n > 0, let h = handlers.last, h.call == callCount - 1 {
            handlers.removeLast()
            n -= 1
        }
    }

    /// Keeps `old`, a global's value being replaced, while it may be running.
    func retire(_ old: Value) {
        guard callCount > 0 else { return }
        switch old {
        case .function, .builtin: retired.append(old)
        default: return
        }
        if retired.count >= 1024 {
            // A builtin's call may be anywhere in the Swift stack: builtins stay; functions stay
            // while a call of theirs runs.
            var running = Set<ObjectIdentifier>()
            for c in 0..<callCount { running.insert(ObjectIdentifier(calls[c].fnRef.takeUnretainedValue())) }
            retired.removeAll { if case .function(let f) = $0 { !running.contains(ObjectIdentifier(f)) } else { false } }
        }
    }

    /// Room for the records of `depth` calls, made while none runs.
    func reserve(depth: Int) {
        guard callCount == 0, depth + 2 > callCapacity else { return }
        calls.deallocate()
        callCapacity = depth + 2
        calls = .allocate(capacity: callCapacity)
    }

    /// Whether one more call record fits (it does whenever the depth limit holds).
    @inline(__always) var callRoom: Bool { callCount < callCapacity }

    /// A window of `count` registers (at most a segment) at the top: where it starts, and its
    /// first register. Moves `top` past it.
    @inline(__always) func window(_ count: Int) -> (start: Int, registers: UnsafeMutablePointer<Value>) {
        let start = top, size = ValueStack.segmentSize, segment = start / size
        if start % size + count <= size, segment < segmentCount {  // the usual case: room in this segment
            top = start + count
            return (start, segments.withUnsafeBufferPointer { $0[segment] } + start % size)
        }
        return newWindow(count)
    }

    @inline(never) private func newWindow(_ count: Int) -> (start: Int, registers: UnsafeMutablePointer<Value>) {
        var start = top
        let size = ValueStack.segmentSize
        if start % size + count > size { start = (start / size + 1) * size }  // to the next segment
        let segment = start / size
        while segments.count <= segment {
            let p = UnsafeMutablePointer<Value>.allocate(capacity: size)
            p.initialize(repeating: .nil_, count: size)
            segments.append(p)
            segmentCount = segments.count
        }
        top = start + count
        return (start, segments[segment] + start % size)
    }

    /// Sets the `count` registers of a window, from `p`, back to nil (when its call ends).
    @inline(__always) static func clear(_ p: UnsafeMutablePointer<Value>, _ count: Int) {
        var k = 0
        while k < count {
            if !Raw.holdsObject(p + k) { Raw.setNil(p + k) } else { Raw.clear(p + k) }
            k += 1
        }
    }

    deinit {
        for p in segments {
            p.deinitialize(count: ValueStack.segmentSize)
            p.deallocate()
        }
        calls.deallocate()
        spare.deinitialize(count: 1)
        spare.deallocate()
    }
}

/// The state of a `for` over anything but a range: the items as they were when the loop began
/// (as the tree iterates them), or a host object's iterator.
final class LoopItems: HostObject {
    static let type = HostType("loop", doc: "A for loop's items.")
    override var hostType: HostType { LoopItems.type }
    let items: [Value]
    var index = 0
    let next: (() throws -> Value?)?
    init(_ items: [Value]) { self.items = items; next = nil }
    init(next: @escaping () throws -> Value?) { items = []; self.next = next }
}

/// One running call of compiled code: plain data (its function is kept alive by the caller's
/// register that holds it, its chunk by the function), so that calls touch no reference counts.
struct Call {
    let fnRef: Unmanaged<Function>
    let entry: UnsafePointer<Chunk.Entry>
    /// Its registers: a window of the stack, or the slots of its heap frame.
    let regs: UnsafeMutablePointer<Value>
    /// Where its window starts in the stack (-1: its registers are a heap frame's).
    let window: Int
    /// The stack's top while it runs.
    let top: Int
    var pc = 0
    /// The caller's position after its call instruction, for the trace (-1: the call the VM
    /// was entered with, whose trace line `run` adds).
    let callerPC: Int
    /// Where the caller wants the result.
    let result: UnsafeMutablePointer<Value>
    /// Its heap frame (held while it runs), or the view of its window that tree nodes see (made
    /// when the first one runs).
    var frame: Unmanaged<Frame>?

    /// For what is not on the hot path: errors, upvalues, tree nodes.
    var fn: Function { fnRef.takeUnretainedValue() }
    var chunk: Chunk { entry.pointee.chunk.takeUnretainedValue() }

    /// Lets go of what the call holds: its window's values, its frame. A heap frame's
    /// temporaries are let go first: the closures that keep the frame see only its declared
    /// slots, and a closure the call made and returned would otherwise sit in a temporary of the
    /// very frame it keeps, a cycle that only the cycle collector would free.
    @inline(__always) func end(_ stack: ValueStack) {
        if window >= 0 {
            ValueStack.clear(regs, entry.pointee.registers)
        } else {
            for k in entry.pointee.slots..<entry.pointee.registers { regs[k] = .nil_ }
        }
        frame?.release()
    }
}
