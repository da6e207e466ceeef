import TrickbookData
import TrickbookModels
import TrickbookScript
import TrickbookTensor
import TrickbookTraining

/// Training: learning-rate schedules, the optimizer, losses, the training step and its pieces,
/// evaluation, checkpoints.
enum TrainingLibrary: Library {
    static let rows: [Row] = [
        Row(
            "linear_scaling(base, batch)",
            doc: "The linear scaling rule: base · batch / 256.",
            example: "linear_scaling(0.1, 1024)  # 0.4"
        ) { a in
            fv(linearScaledLR(try a.float("base"), batch: try a.int("batch", in: 1...(1 << 30))))
        },
        Row(
            "constant(lr)",
            doc: "The same rate at every step.",
            example: "constant(0.1)"
        ) { a in schedule(ConstantLR(try a.float("lr")), "constant") },
        Row(
            "cosine(lr, steps)",
            doc: "Cosine decay over steps: ½(1 + cos(πt/T))·η.",
            example: "cosine(0.1, 1000)"
        ) { a in
            schedule(
                CosineLR(try a.float("lr"), total: try a.int("steps", in: 1...maxSteps)), "cosine",
                steps: try a.int("steps", in: 1...maxSteps))
        },
        Row(
            "step_decay(lr, milestones, gamma = 0.1)",
            doc: "η·γ^k after the k-th milestone (iterations).",
            example: "step_decay(0.1, [3000, 6000])"
        ) { a in
            schedule(
                StepLR(try a.float("lr"), milestones: try milestones(a), gamma: try a.float("gamma")), "step")
        },
        Row(
            "polynomial(lr, steps, power = 2.0)",
            doc: "Polynomial decay: η·(1 − t/T)^p.",
            example: "polynomial(0.1, 1000, power: 2.0)"
        ) { a in
            schedule(
                PolynomialLR(
                    try a.float("lr"), total: try a.int("steps", in: 1...maxSteps), power: try a.float("power")),
                "polynomial",
                steps: try a.int("steps", in: 1...maxSteps))
        },
        Row(
            "warmup(schedule, steps)",
            doc: "Linear warmup: η·i/m over the first m steps, then the schedule.",
            example: "warmup(cosine(0.1, 900), 100)"
        ) { a in
            let s = try scheduleValue(a, "schedule")
            let m = try a.int("steps", in: 0...maxSteps)
            return schedule(WarmupLR(s.schedule, steps: m), "warmup(\(s.name))", steps: s.steps.map { $0 + m })
        },
        Row(
            """
            sgd(model, lr, momentum = 0.9, nesterov = true, weight_decay = 0.0001, no_bias_decay = false, precision = \
            \"fp32\", loss_scale = 65536.0, clip_norm = nil, ema = nil)
            """,
            doc: """
                Nesterov SGD (PyTorch's form); lr is a number or a schedule; no_bias_decay decays only conv and \
                linear weights; precision fp16 or bf16 trains with dynamic loss scaling from loss_scale \
                (.loss_scale, .loss_scales, .skipped_steps, .underflow): \(bf16Note) clip_norm caps the gradients' \
                global L2 norm; ema keeps an average of the weights with that decay (with_ema).
                """,
            example: "sgd(model, lr, weight_decay: 5e-4, no_bias_decay: true)", sgd),
        Row(
            "with_ema(opt, f)",
            doc: """
                Calls f() with the optimizer's averaged weights (sgd(..., ema: 0.999)) in the model, then puts the \
                trained ones back.
                """,
            example: """
                let averaged = sgd(model, 0.1, ema: 0.99); with_ema(averaged, fn() => evaluate_batch(model, \
                batch).top1)
                """
        ) { a in
            guard let ema = try a.host("opt", OptimizerBox.self).trainer.ema else {
                throw a.fail("opt", "keeps no average: make it with sgd(..., ema: 0.999)")
            }
            return try ema.withAveragedWeights { try a.interpreter.callValue(try a.callable("f"), []) }
        },
        Row(
            "save_checkpoint(path, opt, batches = nil)",
            doc: """
                Writes everything needed to resume (weights, momentum, averages, schedule position, loss scale, and \
                the loader's epoch) to one file, atomically.
                """,
            example: "save_checkpoint(\"run.ckpt\", opt, batches)"
        ) { a in
            try a.host("opt", OptimizerBox.self).trainer.save(
                to: try a.string("path"), loader: try a.hostOrNil("batches", LoaderBox.self)?.loader)
            return .nil_
        },
        Row(
            "load_checkpoint(path, opt, batches = nil)",
            doc: """
                Restores a save_checkpoint file into the optimizer's model and state (and the loader's epoch); \
                returns the epochs done, for fit(..., start: done + 1).
                """,
            example: "load_checkpoint(\"run.ckpt\", opt, batches)"
        ) { a in
            let trainer = try a.host("opt", OptimizerBox.self).trainer
            try trainer.resume(from: try a.string("path"), loader: try a.hostOrNil("batches", LoaderBox.self)?.loader)
            return .int(trainer.epoch)
        },
        Row(
            "cross_entropy(smoothing = 0.0, form = \"paper\", teacher = nil, temperature = 20.0)",
            doc: """
                Cross-entropy; label smoothing in the paper's form (1 − ε, ε/(K − 1)) or \"uniform\" \
                (PyTorch's); knowledge distillation from a teacher model at temperature T. Call it: \
                loss(logits, labels).
                """,
            example: "cross_entropy(smoothing: 0.1)"
        ) { a in
            let kd = try a.hostOrNil("teacher", ModelBox.self).map {
                try Distillation(teacher: $0.model, temperature: try a.float("temperature"))
            }
            return .host(
                LossBox(
                    Loss(
                        smoothing: try a.float("smoothing"), form: try a.choice("form", SmoothingForm.self),
                        distillation: kd)))
        },
        Row(
            "mixed_batch(images, targets, lambda = nil)",
            doc: "A mixed batch made in the language (a mixup or CutMix written by hand), for train_step and losses.",
            example: "mixed_batch(batch.images, one_hot(batch.labels, 10))", mixedBatch),
        Row(
            "train_step(model, batch, opt, loss, targets = nil)",
            doc: """
                One step, as opt.zero_grad(); model.train(); l = loss(model(x), y); l.backward(); opt.step() by \
                hand (bitwise the same in FP32). targets: a mixed batch (mixup, CutMix) to train on instead. \
                Returns {loss, lr, size, skipped, correct}.
                """,
            example: "train_step(model, batch, opt, loss).loss", trainStep),
        Row(
            "evaluate_batch(model, batch, precision = \"fp32\")",
            doc: """
                Correct top-1 and top-5 counts and the summed loss of a batch, in evaluation mode; precision fp16 or \
                bf16 runs the model as low-precision training did.
                """,
            example: "evaluate_batch(model, batch).top1"
        ) { a in
            let s = try evaluateBatch(
                try a.host("model", ModelBox.self).model, try a.host("batch", BatchBox.self).batch,
                precision: try a.choice("precision", Precision.self))
            return try record([
                "loss": .float(s.lossSum), "size": .int(s.size), "top1": .int(s.top1), "top5": .int(s.top5),
            ])
        },
        Row(
            "precise_bn(model, batches, count = 50)",
            doc: """
                Precise BN: every batch norm's running statistics become the exact average over `count` batches with \
                the final weights; returns the number of batches used.
                """,
            example: "precise_bn(model, batches, count: 4)", preciseBN),
        Row(
            "smooth_targets(labels, classes, epsilon, form = \"paper\")",
            doc: "The smoothed target rows for labels (to inspect label smoothing).",
            example: "smooth_targets([2], 3, 0.1)"
        ) { a in
            let labels = try labelList(try a.value("labels"), "smooth_targets(): argument 'labels'")
            let q = try oneHot(labels, classes: try a.int("classes"))
            return box(
                try smoothTargets(q, epsilon: try a.float("epsilon"), form: try a.choice("form", SmoothingForm.self)))
        },
    ]

    static let types: [HostType] = [ScheduleBox.type, OptimizerBox.type, LossBox.type]

    /// The longest schedule (in iterations): sums of lengths stay far from overflow.
    static let maxSteps = 1 << 40
    /// The most rates one call lists or plots.
    static let maxValues = 10_000_000

    static func milestones(_ a: Args) throws -> [Int] {
        let m = try a.ints("milestones")
        guard m.allSatisfy({ (0...maxSteps).contains($0) }) else {
            throw a.fail("milestones", "must be iterations from 0 to \(maxSteps)")
        }
        return m
    }

    /// Which BF16 runs on this machine, for the help.
    static var bf16Note: String {
        let simulated = "fp16 rounds weights, activations and gradients around FP32 arithmetic;"
        return OneDNN.bf16InHardware
            ? "\(simulated) bf16 runs its convolutions in BF16 on this CPU (oneDNN on \(OneDNN.isa)) and keeps "
                + "the activations between them in BF16 (batch norm's arithmetic and the weights stay FP32);"
            : "\(simulated) so does bf16 here (\(whyNoBF16));"
    }

    private static var whyNoBF16: String {
        if !OneDNN.available { return "oneDNN is not installed" }
        if !OneDNN.enabled { return "oneDNN is off: TRICKBOOK_ONEDNN=0" }
        return "this CPU has no AVX512_BF16 or AMX"
    }

    static func schedule(_ s: any Schedule, _ name: String, steps: Int? = nil) -> Value {
        .host(ScheduleBox(s, name, steps: steps))
    }

    /// A schedule, or a script function fn(t) used as one.
    static func scheduleValue(_ a: Args, _ name: String) throws -> ScheduleBox {
        if let f = try a.callback(name) { return ScheduleBox(ScriptSchedule(callback: f), f.name, steps: nil) }
        return try a.host(name, ScheduleBox.self)
    }

    /// A loss, or a script function fn(logits, targets) used as one.
    static func criterion(_ a: Args, _ name: String) throws -> any Criterion {
        if let f = try a.callback(name) { return ScriptLoss(callback: f) }
        return try a.host(name, LossBox.self).loss
    }

    static func sgd(_ a: Args) throws -> Value {
        let model = try a.host("model", ModelBox.self).model
        let sched = try a.value("lr").number == nil ? try scheduleValue(a, "lr").schedule : nil
        let base = try sched.map { try $0.lr(at: 0) } ?? a.float("lr")
        let opt = try SGD(
            model, lr: base, momentum: try a.float("momentum"), nesterov: try a.bool("nesterov"),
            weightDecay: try a.float("weight_decay"), noBiasDecay: try a.bool("no_bias_decay"))
        let scale = try a.float("loss_scale")
        guard scale > 0, scale.isFinite else { throw a.fail("loss_scale", "must be a positive number, got \(scale)") }
        let scaler = try a.choice("precision", Precision.self).format.map {
            LossScaler(format: $0, initialScale: scale)
        }
        let clip = try a.floatOrNil("clip_norm")
        if let clip, !(clip > 0) { throw a.fail("clip_norm", "must be positive, got \(clip)") }
        let decay = try a.floatOrNil("ema")
        if let decay, !(decay > 0 && decay < 1) { throw a.fail("ema", "must be a decay between 0 and 1, got \(decay)") }
        let trainer = Trainer(
            model: model, optimizer: opt, schedule: sched ?? CurrentLR(sgd: opt), clipNorm: clip,
            ema: decay.map { EMA(model, decay: $0) }, lowPrecision: scaler)
        // Under MPI: the same model on every rank, rank 0's weights, gradients averaged.
        try trainer.distribute()
        return .host(OptimizerBox(trainer, scheduled: sched != nil))
    }

    static func mixedBatch(_ a: Args) throws -> Value {
        let x = try a.tensor("images")
        let q = try a.tensor("targets")
        guard q.rank == 2, x.shape.first == q.shape.first else {
            throw a.fail("targets", "must be soft rows [N, K] for the N images \(x.shape), got \(q.shape)")
        }
        return .host(
            MixedBox(
                MixedBatch(
                    images: x, targets: q, lambda: try a.isNil("lambda") ? .nan : try a.number("lambda"),
                    permutation: [])))
    }

    static func trainStep(_ a: Args) throws -> Value {
        let model = try a.host("model", ModelBox.self).model
        let batch = try a.host("batch", BatchBox.self).batch
        let trainer = try a.host("opt", OptimizerBox.self).trainer
        guard trainer.model === model else { throw a.fail("opt", "was made by sgd() for another model") }
        trainer.loss = try criterion(a, "loss")
        let mixed = try a.hostOrNil("targets", MixedBox.self)?.mixed
        let r = try trainer.trainStep(mixed?.images ?? batch.images, mixed.map(Targets.init) ?? .labels(batch.labels),
                                      globalCount: batch.globalCount)
        return try record([
            "correct": .int(r.correct), "loss": fv(r.loss), "lr": fv(r.lr), "size": .int(r.size),
            "skipped": .bool(r.skipped),
        ])
    }

    static func preciseBN(_ a: Args) throws -> Value {
        let model = try a.host("model", ModelBox.self).model
        let loader = try a.host("batches", LoaderBox.self).loader
        let count = try a.int("count")
        guard count > 0 else { throw a.fail("count", "must be positive, got \(count)") }
        // Borrow one epoch's order without moving the loader on, so training's data order and
        // checkpoints are the same with or without precise BN.
        let epoch = loader.epoch
        defer { loader.epoch = epoch }
        let it = try loader.epochBatches()
        var used = 0
        let n = try preciseBatchNorm(model) {
            guard used < count, let b = try it.nextBatch() else { return nil }
            used += 1
            return b.images
        }
        try DataParallel.broadcast(model.namedBuffers().map(\.1))  // every rank evaluates with rank 0's
        return .int(n)
    }

    /// Class labels from a list of ints or a tensor [N] of whole numbers (checked, never trapping).
    static func labelList(_ v: Value, _ what: String) throws -> [Int] {
        switch v {
        case .list(let l):
            return try l.items.map { (item: Value) -> Int in
                guard case .int(let n) = item else {
                    throw ScriptError("\(what) must hold int labels, found \(item.typeName)")
                }
                return n
            }
        case .host(let t as TensorBox) where t.tensor.rank <= 1:
            return try t.tensor.scalars.map { (x: Float) -> Int in
                guard x == x.rounded(), abs(x) < 16_777_216 else {
                    throw ScriptError("\(what) must hold whole-number labels, found \(x)")
                }
                return Int(x)
            }
        default: throw ScriptError("\(what) must be a list of int labels or a tensor [N], got \(v.typeName)")
        }
    }

    /// What a loss is computed against: labels (a list of ints or a tensor [N]), soft rows (a
    /// tensor [N, K]) or a mixed batch's soft targets.
    static func targets(_ v: Value, _ what: String) throws -> Targets {
        switch v {
        case .list: return .labels(try labelList(v, what))
        case .host(let m as MixedBox): return Targets(m.mixed)
        case .host(let b as BatchBox): return .labels(b.batch.labels)
        case .host(let t as TensorBox) where t.tensor.rank == 2: return .soft(t.tensor)
        case .host(let t as TensorBox) where t.tensor.rank == 1: return .labels(try labelList(v, what))
        default:
            let kinds = "labels (a list of ints or a tensor [N]), soft targets [N, K] or a mixed batch"
            throw ScriptError("\(what) must be \(kinds), got \(v.typeName)")
        }
    }
}

/// A learning-rate schedule.
final class ScheduleBox: HostObject, TypedHost {
    override var hostType: HostType { ScheduleBox.type }
    let schedule: any Schedule
    let name: String
    /// Its length when it has one (cosine, polynomial): what plot() draws by default.
    let steps: Int?
    init(_ schedule: any Schedule, _ name: String, steps: Int?) {
        self.schedule = schedule
        self.name = name
        self.steps = steps
    }
    static let type: HostType = {
        let t = HostType("schedule", doc: "A learning rate per iteration: s.at(t), s.values(n), plot(s).")
        t.method(
            ScheduleBox.self, "at(t)",
            doc: "The rate at iteration t.",
            example: "lr.at(0)"
        ) { o, a in fv(try o.schedule.lr(at: try a.int("t", in: 0...TrainingLibrary.maxSteps))) }
        t.method(
            ScheduleBox.self, "values(n)",
            doc: "The rates of the first n iterations.",
            example: "lr.values(20)"
        ) { o, a in
            list(try o.schedule.values(try a.int("n", in: 0...TrainingLibrary.maxValues)).map(fv))
        }
        t.describe(ScheduleBox.self) { o in "schedule \(o.name)" }
        return t
    }()
}

/// Without a schedule the rate is whatever `opt.lr` was last set to.
struct CurrentLR: Schedule {
    let sgd: SGD
    func lr(at t: Int) -> Float { sgd.lr }
}

/// The optimizer of one model: the engine's Trainer (SGD, schedule, step count, low precision,
/// clipping, weight averaging, checkpoints).
final class OptimizerBox: HostObject, TypedHost {
    override var hostType: HostType { OptimizerBox.type }
    let trainer: Trainer
    /// Whether the rate follows a schedule (then `opt.lr` cannot be set by hand).
    let scheduled: Bool
    init(_ trainer: Trainer, scheduled: Bool) {
        self.trainer = trainer
        self.scheduled = scheduled
    }
    var sgd: SGD { trainer.optimizer }

    static let type: HostType = {
        let t = HostType(
            "optimizer",
            doc: """
                SGD (Nesterov by default) for one model: zero_grad(), step(), .lr, .step_count, groups(), momentum(); \
                over MPI .buckets (gradient sums per step) and .buckets_in_backward (those started during backward, \
                since made); in low precision .loss_scale, .loss_scales (after every step), .skipped_steps, .underflow.
                """)
        t.property(
            OptimizerBox.self, "lr", get: { o in fv(o.sgd.lr) },
            set: { box, v in
                guard !box.scheduled else {
                    throw ScriptError(
                        "this optimizer follows a schedule; make one with a constant rate to set lr by hand")
                }
                let lr = try number(v, "lr")
                guard lr.isFinite, lr >= 0 else {
                    throw ScriptError("lr must be a finite rate >= 0, got \(Value.float(Double(lr)).repr)")
                }
                box.sgd.lr = lr
            })
        t.property(OptimizerBox.self, "scheduled_lr") { o in fv(try o.trainer.currentLR) }
        t.property(OptimizerBox.self, "step_count") { o in .int(o.trainer.step) }
        t.property(OptimizerBox.self, "buckets") { o in .int(o.trainer.bucketCount) }
        t.property(OptimizerBox.self, "buckets_in_backward") { o in .int(o.trainer.bucketsStartedInBackward) }
        t.property(OptimizerBox.self, "param_groups") { o in
            list(
                try o.sgd.groups.map { g in
                    try record([
                        "name": .string(g.name), "weight_decay": fv(g.weightDecay),
                        "params": list(g.parameters.map { .string($0.0) }),
                    ])
                })
        }
        t.property(OptimizerBox.self, "loss_scale") { o in o.trainer.scaler.map { fv($0.scale) } ?? .nil_ }
        t.property(OptimizerBox.self, "skipped_steps") { o in .int(o.trainer.scaler?.skippedSteps ?? 0) }
        t.property(OptimizerBox.self, "underflow") { o in o.trainer.scaler.map { .float($0.underflowFraction) } ?? .nil_
        }
        t.property(OptimizerBox.self, "loss_scales") { o in list((o.trainer.scaler?.history ?? []).map(fv)) }
        t.method(
            OptimizerBox.self, "groups()",
            doc: "Which tensors are in which weight-decay group.",
            example: "print(opt.groups())"
        ) { o, _ in
            .string(o.sgd.report())
        }
        t.method(
            OptimizerBox.self, "zero_grad()",
            doc: "Clears the gradient of every parameter the optimizer updates.",
            example: "opt.zero_grad()"
        ) { o, _ in
            o.trainer.zeroGrad()
            return .nil_
        }
        t.method(
            OptimizerBox.self, "step()",
            doc: """
                One update from the gradients: weight decay by group, momentum, the rate the schedule gives this \
                iteration (.scheduled_lr), clipping and weight averaging if set; then the schedule moves on.
                """,
            example: "opt.zero_grad(); loss(model(batch.images), batch.labels).backward(); opt.step()"
        ) { o, _ in
            if let scaler = o.trainer.scaler {
                let precision = scaler.format.rawValue
                throw ScriptError(
                    """
                    step(): this optimizer trains in \(precision) with loss scaling; its steps run through \
                    train_step (a step written by hand is FP32)
                    """)
            }
            guard o.trainer.hasGradients else {
                throw ScriptError("step(): no parameter has a gradient; call backward() on a loss first")
            }
            try o.trainer.update()
            return .nil_
        }
        t.method(
            OptimizerBox.self, "momentum()",
            doc: "The momentum buffer of every parameter updated so far, by name.",
            example: "opt.momentum()[\"fc.weight\"]"
        ) { o, _ in
            try ModelBox.tensorMap(o.sgd.buffers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
        t.describe(OptimizerBox.self) { o in
            let s = o.sgd
            let groups = s.groups.map { "\($0.name) \($0.parameters.count)" }.joined(separator: ", ")
            return "sgd(lr \(s.lr), momentum \(s.momentum)\(s.nesterov ? ", nesterov" : ""), groups: \(groups))"
        }
        return t
    }()
}

/// A loss: called on logits and targets it gives a one-element tensor to call backward() on.
final class LossBox: HostObject, TypedHost {
    override var hostType: HostType { LossBox.type }
    let loss: Loss
    init(_ loss: Loss) { self.loss = loss }
    static let type: HostType = {
        let t = HostType(
            "loss",
            doc: """
                The training loss: cross-entropy with optional label smoothing and distillation; loss(logits, labels) \
                computes it.
                """)
        t.callable(
            LossBox.self, "loss(logits, targets, inputs = nil)",
            doc: """
                The mean loss over the batch as a one-element tensor; targets are labels, soft rows or a mixed \
                batch; a distillation loss needs the images as inputs.
                """,
            example: "let l = loss(model(batch.images), batch.labels); l.backward()"
        ) { box, a in
            let logits = try a.tensor("logits")
            let targets = try TrainingLibrary.targets(try a.value("targets"), "loss(): argument 'targets'")
            let inputs = try a.tensorOrNil("inputs")
            if box.loss.distillation != nil && inputs == nil {
                let why = "the teacher sees the batch's images (loss(logits, labels, inputs: images))"
                throw a.fail("inputs", "is needed by a distillation loss: \(why)")
            }
            try checkTargets(targets, logits)
            return .host(TensorBox(try box.loss(logits, targets, inputs: inputs)))
        }
        t.method(
            LossBox.self, "targets(batch, classes = nil)",
            doc: """
                What the loss trains toward for a batch (or a mixed batch): {targets: the label rows after \
                mixing and smoothing, teacher: the teacher's softmax(r/T) or nil}.
                """,
            example: "let q = kd.targets(batch); q.teacher[0].tolist()", targetRows)
        t.describe(LossBox.self) { o in
            let l = o.loss
            let kd = l.distillation.map { ", distillation T=\($0.temperature)" } ?? ""
            return "cross_entropy(smoothing \(l.smoothing), form \(l.form.rawValue)\(kd))"
        }
        return t
    }()

    /// Logits [N, K] against N labels in 0..<K or soft rows [N, K]: a mismatch says both shapes.
    static func checkTargets(_ targets: Targets, _ logits: Tensor) throws {
        guard logits.rank == 2 else { throw ScriptError("loss(): logits must be [N, classes], got \(logits.shape)") }
        switch targets {
        case .labels(let l):
            guard l.count == logits.shape[0] else {
                throw ScriptError("loss(): \(l.count) labels for logits \(logits.shape)")
            }
        case .soft(let q):
            guard q.shape == logits.shape else {
                throw ScriptError("loss(): soft targets \(q.shape) for logits \(logits.shape)")
            }
        }
    }

    static func targetRows(_ lossBox: LossBox, _ a: Args) throws -> Value {
        let l = lossBox.loss
        let (images, targets): (Tensor, Targets)
        switch try a.value("batch") {
        case .host(let b as BatchBox): (images, targets) = (b.batch.images, .labels(b.batch.labels))
        case .host(let m as MixedBox): (images, targets) = (m.mixed.images, Targets(m.mixed))
        case let v: throw a.fail("batch", "must be a batch or a mixed batch (mixup(), cutmix()), got \(v.typeName)")
        }
        let teacher = try l.distillation.map { try $0.teacherTargets(images) }
        var classes = try a.intOrNil("classes")
        if classes == nil, case .soft(let q) = targets { classes = q.shape.last }
        if classes == nil { classes = teacher?.shape.last }
        guard let k = classes, k > 0 else {
            throw a.fail("classes", "is needed to know the number of classes (no teacher and no soft targets)")
        }
        let rows = try targets.rows(classes: k, smoothing: l.smoothing, form: l.form)
        return try record(["targets": box(rows), "teacher": teacher.map(box) ?? .nil_])
    }
}
