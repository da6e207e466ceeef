import Foundation
import TrickbookData
import TrickbookModels
import TrickbookMPI
import TrickbookTensor

/// Mixed-precision training on a CPU: the forward and backward passes see weights, activations
/// and activation gradients rounded to FP16 or BF16, the optimizer updates FP32 master weights,
/// and a dynamic loss scale keeps small gradients from flushing to zero.
///
/// On a CPU this is a study aid, not a speed-up: the tensors stay Float32 in memory and the
/// rounding costs extra time, so a step is slower and uses as much memory as FP32. What it shows
/// honestly is the numerics: which gradients underflow, when the scale backs off, how accuracy holds.
public final class LossScaler {
    public let format: LowPrecisionFormat
    public private(set) var scale: Float
    public let growthInterval: Int
    public private(set) var skippedSteps = 0
    public private(set) var cleanSteps = 0
    /// The fraction of gradient values (scaled) that round to zero in the format, last step.
    public private(set) var underflowFraction: Double = 0
    /// The scale after every step, to plot how it grew and halved (not kept in checkpoints).
    public private(set) var history: [Float] = []

    public init(format: LowPrecisionFormat = .float16, initialScale: Float = 65536, growthInterval: Int = 2000) {
        self.format = format
        self.scale = initialScale
        self.growthInterval = max(1, growthInterval)
    }

    /// After backward of loss·scale: false (and the scale halves) if any gradient is inf or NaN;
    /// else the gradients are unscaled, underflow is counted, and the scale doubles after
    /// `growthInterval` clean steps.
    func unscale(_ params: [Tensor]) -> Bool {
        var finite = true, zero = 0, total = 0
        for p in params {
            guard let g = p.grad else { continue }
            let (ok, zeros) = g.unscale(by: 1 / scale, fp16: format == .float16)
            finite = finite && ok
            zero += zeros
            total += g.count
        }
        guard finite else {  // the step is skipped: whatever was scaled is thrown away
            scale /= 2
            skippedSteps += 1
            cleanSteps = 0
            for p in params { p.zeroGrad() }
            history.append(scale)
            return false
        }
        underflowFraction = total == 0 ? 0 : Double(zero) / Double(total)
        cleanSteps += 1
        if cleanSteps >= growthInterval { scale *= 2; cleanSteps = 0 }
        history.append(scale)
        return true
    }

    func restore(scale: Float, clean: Int, skipped: Int) { self.scale = scale; cleanSteps = clean; skippedSteps = skipped }
}

/// Runs `body` with `params` rounded to `format`, then puts the full-precision values back
/// (even when `body` throws).
func withRoundedWeights<T>(_ params: [Tensor], _ format: LowPrecisionFormat, _ body: () throws -> T) throws -> T {
    let masters = params.map { $0.copy() }
    for p in params { copy(p.rounded(to: format), into: p) }
    defer { for (p, m) in zip(params, masters) { copy(m, into: p) } }
    return try body()
}

/// The logits of a model run as it was trained in low precision: weights, inputs and every
/// layer's output rounded to `format`, in evaluation mode and without gradients. Evaluating a
/// BF16-trained model this way avoids the batch-norm collapse FP32 evaluation can show.
public func lowPrecisionLogits(_ model: Module, _ inputs: Tensor, format: LowPrecisionFormat) throws -> Tensor {
    model.eval()
    if format == .bfloat16, OneDNN.bf16InHardware {
        return try withNoGrad { try OneDNN.$lowPrecision.withValue(true) { try model(inputs) } }
    }
    return try withNoGrad {
        try withRoundedWeights(model.namedParameters().map(\.1), format) {
            try Module.$activationFormat.withValue(format) { try model(inputs.rounded(to: format)) }
        }
    }
}

/// An exponential moving average of the weights: s ← d·s + (1 − d)·w after every step.
public final class EMA {
    public let decay: Float
    public private(set) var shadows: [(String, Tensor, Tensor)] = []  // name, parameter, average

    public init(_ model: Module, decay: Float = 0.999) {
        self.decay = decay
        shadows = model.namedParameters().map { ($0.0, $0.1, $0.1.copy()) }
    }

    func update() throws {
        for (_, p, s) in shadows {
            try withNoGrad { try s.update(subtracting: try s - p.detached(), scale: 1 - decay) }
        }
    }

    /// Runs `body` with the averaged weights in the model, then puts the trained ones back.
    public func withAveragedWeights<T>(_ body: () throws -> T) rethrows -> T {
        let saved = shadows.map { $0.1.copy() }
        for (_, p, s) in shadows { copy(s, into: p) }
        defer { for ((_, p, _), w) in zip(shadows, saved) { copy(w, into: p) } }
        return try body()
    }
}

func copy(_ src: Tensor, into dst: Tensor) {
    src.withUnsafeBufferPointer { s in dst.withUnsafeMutableBufferPointer { d in _ = d.update(fromContentsOf: s) } }
}

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
}

/// What one training step did.
public struct StepResult {
    public let loss: Float
    public let lr: Float
    /// True when low precision skipped the update for inf/NaN gradients.
    public let skipped: Bool
    /// Rows whose largest logit is the target's class (for soft targets, their largest entry),
    /// counted from the step's own forward pass: the running training accuracy costs nothing.
    public let correct: Int
    /// The images of the step. In data-parallel training the loss, `correct` and `size` are the
    /// global batch's (every rank's), so that every rank reports what one process would.
    public let size: Int
}

/// How many rows of `logits` [N, K] pick the target's class.
func correctCount(_ logits: Tensor, _ targets: Targets) throws -> Int {
    let predicted = try logits.argmax(axis: 1).scalars
    let wanted: [Int]
    switch targets {
    case .labels(let l): wanted = l
    case .soft(let q): wanted = try q.argmax(axis: 1).scalars.map { Int($0) }
    }
    return zip(predicted, wanted).reduce(0) { $0 + (Int($1.0) == $1.1 ? 1 : 0) }
}

/// One training step: forward, loss, backward, optional clipping, optimizer, schedule; with
/// optional low precision and weight averaging. Its whole state checkpoints and resumes exactly.
public final class Trainer {
    public let model: Module
    public let optimizer: SGD
    public let schedule: any Schedule
    public var loss: any Criterion
    /// Clip the gradients' global L2 norm to this (nil: no clipping).
    public var clipNorm: Float?
    public let ema: EMA?
    public let scaler: LossScaler?
    /// Iterations done: the schedule's position.
    public private(set) var step = 0
    public var epoch = 0
    /// Random generators whose states go into checkpoints (data order, augmentation).
    public var generators: [String: Generator] = [:]
    /// Data-parallel training: averages the gradients over the ranks (see DataParallel.swift).
    private(set) var reducer: GradientReducer?
    /// The model's buffers, given rank 0's values after each data-parallel step unless batch
    /// norm is synchronised (as DDP's broadcast_buffers): evaluation and checkpoints then agree.
    private var sharedBuffers: [Tensor] = []
    /// The model's batch norms, found once: when every one is synchronised (`sync_bn`, which may
    /// come after the optimizer), their buffers agree across ranks by themselves.
    private var batchNorms: [BatchNorm2d] = []

    public init(model: Module, optimizer: SGD, schedule: any Schedule, loss: any Criterion = Loss(), clipNorm: Float? = nil,
                ema: EMA? = nil, lowPrecision: LossScaler? = nil) {
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.loss = loss
        self.clipNorm = clipNorm
        self.ema = ema
        self.scaler = lowPrecision
    }

    var parameters: [Tensor] { optimizer.groups.flatMap { $0.parameters.map(\.1) } }

    /// Makes this trainer data-parallel over the MPI ranks (nothing with one process): the model
    /// is checked to be the same on every rank and given rank 0's weights; from then on each
    /// step's gradients are averaged over the ranks, in buckets of about `bucketBytes`.
    public func distribute(bucketBytes: Int = DataParallel.defaultBucketBytes) throws {
        guard DataParallel.active, reducer == nil else { return }
        try DataParallel.agree(on: model)
        reducer = GradientReducer(parameters, bucketBytes: bucketBytes)
        sharedBuffers = model.namedBuffers().map(\.1)
        batchNorms = model.namedModules().compactMap { $0.1 as? BatchNorm2d }
        if let ema { for (_, p, s) in ema.shadows { copy(p, into: s) } }  // the averages start from rank 0's weights too
    }

    /// How many buckets the gradients are summed in (0: not data-parallel).
    public var bucketCount: Int { reducer?.bucketCount ?? 0 }
    /// How many bucket sums started while backward was still running, since the optimizer was made.
    public var bucketsStartedInBackward: Int { reducer?.startedInBackward ?? 0 }
    /// Seconds this process has spent communicating gradients and buffers (0: not data-parallel).
    public private(set) var bufferSeconds = 0.0
    public var communicationSeconds: Double { (reducer?.communicationSeconds ?? 0) + bufferSeconds }

    /// The rate the next update uses: the schedule's value at the current iteration.
    public var currentLR: Float { get throws { try schedule.lr(at: step) } }

    /// One step: forward, loss, backward, then `update()`. A person can write the same step by
    /// hand, piece by piece (zero_grad, model(x), loss(z, y), backward, opt.step()), and get
    /// bitwise the same weights in FP32.
    /// In data-parallel training `globalCount` is the size of the global batch this rank's
    /// `inputs` are a share of: the gradient is then the global batch's mean, whatever the shares.
    public func trainStep(_ inputs: Tensor, _ targets: Targets, globalCount: Int? = nil) throws -> StepResult {
        let lr = try currentLR
        optimizer.lr = lr
        model.train()
        zeroGrad()
        let n = inputs.shape.first ?? 0
        // The ranks' gradients are averaged: a rank whose share is not 1/size of the global batch
        // weighs its loss by how far it is off, so that the average is the global batch's mean.
        var share: Float = 1
        if reducer != nil, let m = globalCount, m > 0 { share = Float(MPI.size) * Float(n) / Float(m) }
        let value: Float, correct: Int
        if let scaler, scaler.format == .bfloat16, OneDNN.bf16InHardware {
            // BF16 in hardware: convolutions take BF16 copies of their inputs and weights (made by
            // oneDNN as it lays them out) and give FP32; everything else, the masters included, stays FP32.
            let (z, lossTensor) = try OneDNN.$lowPrecision.withValue(true) {
                let z = try model(inputs)
                return (z, try loss(z, targets, inputs: inputs))
            }
            try (lossTensor * (scaler.scale * share)).backward()
            value = lossTensor.item
            correct = try correctCount(z, targets)
        } else if let scaler {
            // Forward and backward on rounded weights; the optimizer then updates the FP32 masters.
            let (z, lossTensor) = try withRoundedWeights(parameters, scaler.format) {
                let (z, l) = try Module.$activationFormat.withValue(scaler.format) {
                    let z = try model(inputs.rounded(to: scaler.format))
                    return (z, try loss(z, targets, inputs: inputs))
                }
                try (l * (scaler.scale * share)).backward()
                return (z, l)
            }
            value = lossTensor.item
            correct = try correctCount(z, targets)
        } else {
            let z = try model(inputs)
            let lossTensor = try loss(z, targets, inputs: inputs)
            value = lossTensor.item
            correct = try correctCount(z, targets)
            guard value.isFinite else { throw TrainingError(description: "the loss became \(value) at step \(step)") }
            try (share == 1 ? lossTensor : lossTensor * share).backward()
        }
        let (applied, global) = try update(stats: [Double(value) * Double(n), Double(correct), Double(n)])
        guard global.count == 3, global[2] > 0 else {
            return StepResult(loss: value, lr: lr, skipped: !applied, correct: correct, size: n)
        }
        return StepResult(loss: Float(global[0] / global[2]), lr: lr, skipped: !applied, correct: Int(exactly: global[1].rounded()) ?? correct,
                          size: Int(exactly: global[2].rounded()) ?? n)
    }

    /// Whether any parameter the optimizer updates has a gradient (backward has run since zero_grad).
    public var hasGradients: Bool { parameters.contains { $0.grad != nil } }

    /// Clears every parameter's gradient (the optimizer's `zero_grad`); in data-parallel training
    /// the next backward's gradients are then summed across the ranks as they come.
    public func zeroGrad() {
        for p in parameters { p.zeroGrad() }
        reducer?.arm()
    }

    /// The update after backward: in low precision unscale the gradients (or skip the step on
    /// inf/NaN), clip, SGD at the schedule's rate for this iteration, weight averaging; then the
    /// schedule moves on. Returns false when low precision skipped the step.
    @discardableResult
    public func update() throws -> Bool { try update(stats: []).applied }

    /// `update()`; in data-parallel training the gradients are first averaged over the ranks, and
    /// `stats` summed over them in the same exchange (returned summed; as given with one process).
    func update(stats: [Double]) throws -> (applied: Bool, stats: [Double]) {
        let params = parameters
        optimizer.lr = try currentLR
        let summed = try reducer?.finish(stats: stats) ?? stats
        if let scaler, !scaler.unscale(params) {
            step += 1
            return (false, summed)
        }
        if let clipNorm { try clip(params, to: clipNorm) }
        try optimizer.step()
        try ema?.update()
        step += 1
        let buffersAgree = !batchNorms.isEmpty && batchNorms.allSatisfy { $0.synchronize != nil }
        if reducer != nil, !buffersAgree {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try DataParallel.broadcast(sharedBuffers)
            bufferSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        return (true, summed)
    }

    /// Scales all gradients so that their global L2 norm is at most `maxNorm`.
    private func clip(_ params: [Tensor], to maxNorm: Float) throws {
        var sq = 0.0
        for p in params { p.grad?.withUnsafeBufferPointer { for v in $0 { sq += Double(v) * Double(v) } } }
        let norm = Float(sq.squareRoot())
        guard norm > maxNorm, norm > 0 else { return }
        let f = maxNorm / norm
        for p in params { p.grad?.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] *= f } } }
    }

    // MARK: Checkpoints

    /// Writes the model, the momentum buffers, the averaged weights, the schedule position, the
    /// loss scaler, the epoch (the loader's, when given) and the generators' states to one file
    /// (atomically).
    public func save(to path: String, loader: Loader? = nil) throws {
        if let loader { epoch = loader.epoch }
        var tensors = model.stateDict().map { ("model." + $0.0, $0.1) }
        tensors += optimizer.buffers.sorted { $0.key < $1.key }.map { ("optimizer.momentum." + $0.key, $0.value) }
        if let ema { tensors += ema.shadows.map { ("ema." + $0.0, $0.2) } }
        var meta = ["format": "pt", "trickbook.step": String(step), "trickbook.epoch": String(epoch), "trickbook.lr": String(optimizer.lr)]
        if let scaler {
            meta["trickbook.scale"] = String(scaler.scale)
            meta["trickbook.scaler"] = "\(scaler.cleanSteps),\(scaler.skippedSteps)"
        }
        for (name, g) in generators { meta["trickbook.generator." + name] = g.state.map(String.init).joined(separator: ",") }
        try SafeTensors.write(tensors, to: path, metadata: meta)
    }

    /// Restores everything `save` wrote (and the loader's epoch, when given), so that training
    /// continues exactly as an unbroken run.
    public func resume(from path: String, loader: Loader? = nil) throws {
        let entries = try SafeTensors.read(path)
        let meta = try SafeTensors.metadata(path)
        guard let s = meta["trickbook.step"].flatMap(Int.init), let e = meta["trickbook.epoch"].flatMap(Int.init) else {
            throw TrainingError(description: "\(path) is not a training checkpoint (no step and epoch)")
        }
        // Counters that will be incremented: far from overflow, as a real run leaves them.
        guard (0...(1 << 40)).contains(s), (0...(1 << 40)).contains(e) else {
            throw TrainingError(description: "\(path): step \(s) or epoch \(e) is not a count a run can reach")
        }
        var modelTensors: [String: Tensor] = [:]
        var buffers: [String: Tensor] = [:], averages: [String: Tensor] = [:]
        for entry in entries {
            if entry.name.hasPrefix("model.") { modelTensors[String(entry.name.dropFirst(6))] = entry.tensor }
            else if entry.name.hasPrefix("optimizer.momentum.") { buffers[String(entry.name.dropFirst(19))] = entry.tensor }
            else if entry.name.hasPrefix("ema.") { averages[String(entry.name.dropFirst(4))] = entry.tensor }
        }
        // Every momentum buffer belongs to a parameter of this optimizer and has its shape: checked
        // before anything is restored.
        let shapes = Dictionary(optimizer.groups.flatMap { $0.parameters.map { ($0.0, $0.1.shape) } }, uniquingKeysWith: { a, _ in a })
        for (name, t) in buffers {
            guard let shape = shapes[name] else { throw TrainingError(description: "\(path): a momentum buffer for '\(name)', which this optimizer does not update") }
            guard shape == t.shape else {
                throw TrainingError(description: "\(path): the momentum buffer of '\(name)' is \(t.shape), the parameter is \(shape)")
            }
        }
        for (name, g) in generators {
            guard let text = meta["trickbook.generator." + name] else { throw TrainingError(description: "\(path) has no state for generator '\(name)'") }
            try g.restore(text.split(separator: ",").compactMap { UInt64($0) })
        }
        try model.load(modelTensors, source: path)
        for (name, t) in buffers { optimizer.setBuffer(name, t) }
        if let ema {
            for (name, _, shadow) in ema.shadows {
                guard let t = averages[name], t.shape == shadow.shape else { throw TrainingError(description: "\(path) has no average for '\(name)'") }
                copy(t, into: shadow)
            }
        }
        if let scaler, let sc = meta["trickbook.scale"].flatMap(Float.init), let parts = meta["trickbook.scaler"]?.split(separator: ",").compactMap({ Int($0) }), parts.count == 2 {
            scaler.restore(scale: sc, clean: parts[0], skipped: parts[1])
        }
        step = s
        epoch = e
        loader?.epoch = e
    }
}

// MARK: Snapshots in memory (a notebook's undo)

extension Trainer {
    /// The optimizer's state as `save` writes it, kept in memory. Momentum buffers are replaced at
    /// each step, never written in place, so the snapshot holds the buffers themselves; the
    /// averaged weights are updated in place and are copied.
    public struct Snapshot {
        let buffers: [String: Tensor]
        let averages: [Tensor]
        let step: Int, epoch: Int, lr: Float
        let scaler: (scale: Float, clean: Int, skipped: Int)?
        let generators: [String: [UInt64]]
        /// Bytes it keeps alive once training goes on.
        public let bytes: Int
    }

    /// The bytes `snapshot()` would hold.
    public var snapshotBytes: Int {
        (optimizer.buffers.values.reduce(0) { $0 + $1.count } + (ema?.shadows.reduce(0) { $0 + $1.2.count } ?? 0)) * 4
    }

    public func snapshot() -> Snapshot {
        let averages = ema?.shadows.map { $0.2.copy() } ?? []
        let bytes = snapshotBytes
        return Snapshot(
            buffers: optimizer.buffers, averages: averages, step: step, epoch: epoch, lr: optimizer.lr,
            scaler: scaler.map { ($0.scale, $0.cleanSteps, $0.skippedSteps) }, generators: generators.mapValues(\.state),
            bytes: bytes)
    }

    /// Puts the optimizer back as the snapshot found it (the model is the caller's to restore).
    public func restore(_ s: Snapshot) throws {
        for (name, g) in generators { if let state = s.generators[name] { try g.restore(state) } }
        optimizer.replaceBuffers(s.buffers)
        if let ema { for ((_, _, shadow), saved) in zip(ema.shadows, s.averages) { copy(saved, into: shadow) } }
        if let scaler, let sc = s.scaler { scaler.restore(scale: sc.scale, clean: sc.clean, skipped: sc.skipped) }
        optimizer.lr = s.lr
        step = s.step
        epoch = s.epoch
    }
}
