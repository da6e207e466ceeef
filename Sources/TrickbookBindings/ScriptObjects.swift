import Foundation
import TrickbookData
import TrickbookModels
import TrickbookScript
import TrickbookTensor
import TrickbookTraining

// Script functions in the places of Swift objects: a module's forward, a transform, a schedule,
// a loss. Each calls back into its session and checks what the function returned, so that a
// wrong result is an error that names the function, not a crash further on.

/// The session a function belongs to; held weakly so that an object kept in a global does not
/// keep its session alive.
final class Callback {
    weak var interpreter: Interpreter?
    let function: Value
    init(_ function: Value, _ interpreter: Interpreter) {
        self.function = function
        self.interpreter = interpreter
    }

    var name: String {
        if case .function(let f) = function { return f.label }
        return function.typeName
    }

    func call(_ args: [Value]) throws -> Value {
        guard let i = interpreter else { throw ScriptError("\(name)(): its session has ended") }
        return try i.callValue(function, args)
    }
}

/// A module whose forward is a script function `fn(m, x)`, with named children and parameters.
final class ScriptModule: Module {
    let name: String
    let forwardFunction: Callback

    init(name: String, forward: Callback) {
        self.name = name
        forwardFunction = forward
        super.init()
    }

    func add(_ key: String, _ v: Value) throws {
        switch v {
        case .host(let m as ModelBox): child(key, m.model)
        case .host(let t as TensorBox): _ = param(key, t.tensor)
        case .host(let b as BufferBox): _ = buffer(key, b.tensor)
        default:
            throw ScriptError(
                "module(): '\(key)' must be a module, a tensor (a parameter) or buffer(t), got \(v.typeName)")
        }
    }

    override var typeName: String { name }

    override func forward(_ x: Tensor) throws -> Tensor {
        let r = try forwardFunction.call([.host(ModelBox(self)), box(x)])
        guard case .host(let t as TensorBox) = r else {
            throw ScriptError("the forward of \(name) (\(forwardFunction.name)) returned \(r.typeName), not a tensor")
        }
        return t.tensor
    }
}

/// A tensor marked as a module's buffer (state that is saved but not trained).
final class BufferBox: HostObject, TypedHost {
    override var hostType: HostType { BufferBox.type }
    let tensor: Tensor
    init(_ tensor: Tensor) { self.tensor = tensor }
    static let type: HostType = {
        let t = HostType(
            "buffer",
            doc: "A tensor to keep in a module as a buffer: module(name, {\"running\": buffer(zeros([4]))}, f).")
        t.describe(BufferBox.self) { o in "buffer \(o.tensor.shape)" }
        return t
    }()
}

/// A per-image transform `fn(image, rng)`: the image as a tensor [C, H, W] of 0–255 values, rng
/// a generator drawn from (seed, epoch, position) as the built-in transforms draw theirs. Given
/// copies for the loader's workers (`workers`), it runs on their threads, each image in a worker
/// session; else on its session's thread.
struct ScriptTransform: Transform {
    let callback: Callback
    let workers: WorkerSessions?
    init(callback: Callback, workers: WorkerSessions? = nil) {
        self.callback = callback
        self.workers = workers
    }
    var runsOnAnyThread: Bool { workers != nil }
    func onWorker(_ body: () -> Void) { Interpreter.onDeepStack(body) }

    func apply(_ image: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        let x = try Tensor(image.pixels, shape: [image.channels, image.height, image.width])
        let args: [Value] = [box(x), .host(GeneratorBox(g))]
        let r = try workers?.call(args) ?? callback.call(args)
        guard case .host(let t as TensorBox) = r, t.tensor.rank == 3 else {
            let got = {
                if case .host(let t as TensorBox) = r { return "a tensor of shape \(t.tensor.shape)" }
                return r.typeName
            }()
            throw ScriptError("the transform \(callback.name) returned \(got), not an image [C, H, W]")
        }
        log.append(Sampled(transform: callback.name, values: []))
        let s = t.tensor.shape
        return Image(channels: s[0], height: s[1], width: s[2], pixels: t.tensor.scalars)
    }
}

/// Sessions of their own, each with a copy of one function (see `Interpreter.standalone`), for
/// the loader's worker threads: a worker takes an idle one for each call (a session runs on one
/// thread at a time) and makes one when none is idle. They stop with the session that made them
/// (its interrupt flag), count steps as it does, and print to standard error (the session's
/// output belongs to its own thread).
final class WorkerSessions: @unchecked Sendable {
    private let copy: Standalone
    private let interrupt: InterruptFlag
    private let stepLimit: Int?
    private let lock = NSLock()
    private var idle: [(Interpreter, Value)] = []

    init(_ copy: Standalone, of session: Interpreter) {
        self.copy = copy
        interrupt = session.interrupt
        stepLimit = session.stepLimit
    }

    func call(_ args: [Value]) throws -> Value {
        lock.lock()
        let taken = idle.popLast()
        lock.unlock()
        let (session, f) = try taken ?? make()
        defer {
            lock.lock()
            idle.append((session, f))
            lock.unlock()
        }
        return try session.callAsRun(f, args)
    }

    private func make() throws -> (Interpreter, Value) {
        let session = Interpreter(interrupt: interrupt)
        Bindings.register(into: session)
        session.stepLimit = stepLimit
        session.output = { FileHandle.standardError.write(Data(("loader worker: " + $0).utf8)) }
        return (session, try copy.install(into: session))
    }
}

/// A learning-rate schedule `fn(t)` of the iteration t (from 0).
struct ScriptSchedule: Schedule {
    let callback: Callback
    func lr(at t: Int) throws -> Float {
        let r = try callback.call([.int(t)])
        guard let d = r.number, d.isFinite, d >= 0 else {
            throw ScriptError("the schedule \(callback.name) gave \(r.repr) at iteration \(t), not a finite rate >= 0")
        }
        return Float(d)
    }
}

/// A loss `fn(logits, targets)`: targets are the labels as a list, or soft rows [N, K] (mixup,
/// CutMix); it returns a one-element tensor.
struct ScriptLoss: Criterion {
    let callback: Callback
    func callAsFunction(_ logits: Tensor, _ targets: Targets, inputs: Tensor?) throws -> Tensor {
        let t: Value
        switch targets {
        case .labels(let l): t = ints(l)
        case .soft(let q): t = box(q)
        }
        let r = try callback.call([box(logits), t])
        guard case .host(let l as TensorBox) = r, l.tensor.count == 1 else {
            let got = {
                if case .host(let l as TensorBox) = r { return "a tensor of shape \(l.tensor.shape)" }
                return r.typeName
            }()
            throw ScriptError("the loss \(callback.name) returned \(got), not a one-element tensor")
        }
        return l.tensor
    }
}

extension Args {
    /// A script function given for `name`, wrapped for calls from Swift; nil for anything else.
    func callback(_ name: String) throws -> Callback? {
        guard case .function = try value(name) else { return nil }
        return Callback(try value(name), interpreter)
    }
}

// What the cycle collector looks through (see CycleTraversable): a model whose forward closes
// over the frame that holds the model is a cycle, freed between cells. Each reference added is
// one the object holds. Trainers and loaders are not looked into: a script loss, schedule or
// transform that closes over its own trainer or loader is kept, not freed.
extension Callback: CycleTraversable {
    func traverse(into held: inout CycleReferences) { held.add(function) }
}

extension Module: CycleTraversable {
    public func traverse(into held: inout CycleReferences) {
        for (_, child) in children { held.add(child) }
        if let s = self as? ScriptModule { held.add(s.forwardFunction) }
    }
}

extension ModelBox: CycleTraversable {
    func traverse(into held: inout CycleReferences) { held.add(model) }
}
