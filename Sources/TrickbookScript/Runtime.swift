/// Frames, compiled functions and the control-flow signal of statements.

struct FrameHeader {
    let count: Int
    let parent: Frame?
    var slots: UnsafeMutablePointer<Value>?
    /// The session whose cycle collector tracks this frame (0: none; a frame is tracked once a
    /// closure captures it, since only then can it be part of a cycle).
    var gcOwner: Int32 = 0
}

/// The slots of one function call (its parameters and every local of its blocks), and the frame
/// of the function it was defined in, for variables it closes over. The slots are allocated with
/// the object (one malloc per call) and reached through a raw pointer (no copy-on-write checks).
final class Frame: ManagedBuffer<FrameHeader, Value> {
    static func make(count: Int, parent: Frame?) -> Frame {
        let f = unsafeDowncast(Frame.create(minimumCapacity: max(count, 1)) { _ in
            FrameHeader(count: count, parent: parent, slots: nil, gcOwner: 0)
        }, to: Frame.self)
        f.withUnsafeMutablePointers { h, e in
            e.initialize(repeating: .nil_, count: count)
            h.pointee.slots = e
        }
        return f
    }

    /// A frame whose slots are someone else's (a VM call's registers), for the tree nodes a
    /// compiled function leaves to the tree: it holds no values of its own.
    static func view(of slots: UnsafeMutablePointer<Value>, parent: Frame?) -> Frame {
        let f = unsafeDowncast(Frame.create(minimumCapacity: 1) { _ in
            FrameHeader(count: 0, parent: parent, slots: slots, gcOwner: 0)
        }, to: Frame.self)
        return f
    }

    @inline(__always) var slots: UnsafeMutablePointer<Value> { header.slots.unsafelyUnwrapped }
    var parent: Frame? { header.parent }

    @inline(__always) func ancestor(_ depth: Int) -> Frame {
        var f = self
        for _ in 0..<depth { if let p = f.header.parent { f = p } }
        return f
    }

    /// Tracks this frame and the frames around it with `owner`'s cycle collector.
    func track(owner: Int32) {
        var f: Frame? = self
        while let fr = f, fr.header.gcOwner == 0 {
            fr.header.gcOwner = owner
            CycleCollector.register(fr, owner: owner)
            f = fr.header.parent
        }
    }

    deinit {
        withUnsafeMutablePointers { h, e in
            if h.pointee.gcOwner != 0 { CycleCollector.unregister(self, owner: h.pointee.gcOwner) }
            Teardown.take(e, count: h.pointee.count)
        }
    }
}

/// A function's compiled form, shared by every closure made from it.
final class FunctionProto {
    let name: String
    let params: [String]
    /// Default value expressions, evaluated in the new frame at each call (nil: required).
    var defaults: [Expr?]
    /// Whether a default makes a function: it would close over the frame the defaults are
    /// evaluated in, so the body must run in that frame (as a tree), not in registers.
    var defaultsMakeFunctions = false
    var body: ContiguousArray<Stmt> = []
    var slotCount = 0
    let file: SourceFile
    let pos: SourcePos
    /// Whether the body makes a function (a closure may then outlive a call's frame).
    var makesClosures = false
    /// The locals of functions around it that the body uses: their names, how many functions
    /// out they are and their slots there (see `Interpreter.standalone`).
    var captures: [(name: String, depth: Int, slot: Int)] = []
    /// Where its text is in `file`: from its parameters' "(" to the token after its body.
    var text: (from: SourcePos, to: SourcePos)?
    /// The body as bytecode, made at the first call; nil when it cannot be (see BytecodeCompiler).
    var bytecode: Chunk? { didSet { entry = bytecode.map { UnsafePointer($0.entry) } } }
    /// What the VM's calls read of `bytecode`, without a reference count (`bytecode` keeps it).
    private(set) var entry: UnsafePointer<Chunk.Entry>?
    var bytecodeTried = false

    init(name: String, params: [String], defaults: [Expr?], file: SourceFile, pos: SourcePos) {
        self.name = name
        self.params = params
        self.defaults = defaults
        self.file = file
        self.pos = pos
    }
}

/// What a statement asks of the loop or function around it.
enum Flow { case normal, breakLoop, continueLoop, returnValue }

/// The interpreter's per-step state, kept at one address for the nodes.
struct RuntimeState {
    var globals: UnsafeMutablePointer<Value>
    var defined: UnsafeMutablePointer<Bool>
    let interrupt: UnsafeAtomic<Bool>
    var depth = 0
    /// Loop iterations and calls left before "step limit exceeded" (for fuzzing and sandboxes).
    var budget = Int.max
    var returned: Value = .nil_
    var lastValue: Value = .nil_

    @inline(__always) var interrupted: Bool { interrupt.load(ordering: .relaxed) }

    /// Counts one step; true when the script must stop (interrupted, or out of steps).
    @inline(__always) mutating func mustStop() -> Bool {
        budget &-= 1
        return budget < 0 || interrupted
    }
}

/// Raised when a step limit runs out; not catchable by scripts, like an interrupt.
public struct StepLimitExceeded: Error, CustomStringConvertible {
    public var description: String { "step limit exceeded" }
}

extension Node {
    /// The error for a stop at this node: an interrupt, or the step limit.
    func stopError() -> Error {
        state.pointee.budget < 0 ? StepLimitExceeded() : ScriptInterrupted(file: file, pos: pos)
    }

}

import Atomics
