import Foundation
import TrickbookData
import TrickbookModels
import TrickbookScript
import TrickbookTensor
import TrickbookTraining

// Host objects: Swift values as the language sees them. Each type's methods, properties and
// operators are declared once, in its `type`.

/// A Float as a script number, by its shortest decimal form (0.05, not 0.05000000074505806).
func fv(_ f: Float) -> Value { .float(Double(f.description) ?? Double(f)) }

/// A host object whose type is known statically, so that arguments can be checked by type.
protocol TypedHost: HostObject {
    static var type: HostType { get }
}

func number(_ v: Value, _ what: String) throws -> Float {
    guard let d = v.number else { throw ScriptError("\(what) must be a number, got \(v.typeName)") }
    return Float(d)
}

/// A tensor.
final class TensorBox: TypedHost {
    let t: Tensor
    init(_ t: Tensor) { self.t = t }
    var hostType: HostType { TensorBox.type }

    static func operand(_ v: Value) throws -> Tensor? {
        switch v {
        case .host(let o as TensorBox): return o.t
        case .int(let i): return Tensor(scalar: Float(i))
        case .float(let d): return Tensor(scalar: Float(d))
        default: return nil
        }
    }

    static let type: HostType = {
        let t = HostType("tensor", doc: "A Float32 tensor (NCHW for images) that can record operations for autodiff.")
        t.property(TensorBox.self, "shape") { o in .list(ListRef(o.t.shape.map { .int($0) })) }
        t.property(TensorBox.self, "item") { o in fv(o.t.item) }
        t.property(TensorBox.self, "grad") { o in o.t.grad.map { .host(TensorBox($0)) } ?? .nil_ }
        t.property(TensorBox.self, "requires_grad", get: { o in .bool(o.t.requiresGrad) }, set: { o, v in
            guard case .bool(let b) = v else { throw ScriptError("requires_grad must be true or false") }
            o.t.requiresGrad = b
        })
        func m(_ sig: String, _ doc: String, _ example: String, _ body: @escaping (Tensor, Args) throws -> Value) {
            t.method(TensorBox.self, sig, doc: doc, example: example) { box, a in try body(box.t, a) }
        }
        m("sum(axis = nil)", "Sum over an axis, or of everything.", "x.sum(axis: 0)") { x, a in .host(TensorBox(a.isNil(0) ? try x.sum() : try x.sum(axis: try a.int(0)))) }
        m("mean(axis = nil)", "Mean over an axis, or of everything.", "x.mean()") { x, a in .host(TensorBox(a.isNil(0) ? try x.mean() : try x.mean(axis: try a.int(0)))) }
        m("max()", "The largest element.", "x.max().item") { x, _ in .host(TensorBox(try x.max())) }
        m("min()", "The smallest element.", "x.min().item") { x, _ in .host(TensorBox(try x.min())) }
        m("argmax(axis = nil)", "Index of the largest element.", "x.argmax(axis: 1)") { x, a in .host(TensorBox(try x.argmax(axis: a.isNil(0) ? nil : try a.int(0)))) }
        m("exp()", "e^x elementwise.", "x.exp()") { x, _ in .host(TensorBox(x.exp())) }
        m("log()", "Natural log elementwise.", "x.exp().log()") { x, _ in .host(TensorBox(x.log())) }
        m("relu()", "max(x, 0).", "x.relu()") { x, _ in .host(TensorBox(x.relu())) }
        m("sigmoid()", "1 / (1 + e^−x).", "x.sigmoid()") { x, _ in .host(TensorBox(x.sigmoid())) }
        m("softmax(axis = -1)", "Softmax along an axis.", "x.softmax(axis: 1)") { x, a in .host(TensorBox(try x.softmax(axis: try a.int(0)))) }
        m("reshape(*shape)", "The same values in a new shape (-1 is inferred).", "x.reshape(1, -1)") { x, a in .host(TensorBox(try x.reshaped(try a.list(0).map { v in guard case .int(let i) = v else { throw ScriptError("reshape(): sizes must be ints") }; return i }))) }
        m("transpose()", "Swaps the last two axes.", "x.transpose()") { x, _ in .host(TensorBox(try x.transposed())) }
        m("backward()", "Back-propagates from this one-element tensor.", "(w * w).sum().backward(); w.grad") { x, _ in try x.backward(); return .nil_ }
        m("tolist()", "The values as a (flat) list.", "x.tolist()") { x, _ in .list(ListRef(x.scalars.map(fv))) }
        t.binary = { op, a, b in
            guard let x = try operand(a), let y = try operand(b) else { return nil }
            switch op {
            case "+": return .host(TensorBox(try x + y))
            case "-": return .host(TensorBox(try x - y))
            case "*": return .host(TensorBox(try x * y))
            case "/": return .host(TensorBox(try x / y))
            case "**": return .host(TensorBox(try x.pow(y)))
            case "@": return .host(TensorBox(try x.matmul(y)))
            case "neg": return .host(TensorBox(x.neg()))
            case "<": return .host(TensorBox(try x.lt(y)))
            case ">": return .host(TensorBox(try x.gt(y)))
            default: return nil
            }
        }
        t.index(TensorBox.self) { o, k in
            let x = o.t
            guard x.rank >= 1 else { throw ScriptError("a 0-d tensor cannot be indexed") }
            let i = try sequenceIndex(k, count: x.shape[0], what: "tensor")
            let row = try x.slice(axis: 0, start: i, end: i + 1)
            return .host(TensorBox(try row.reshaped(Array(x.shape.dropFirst()))))
        }
        t.length(TensorBox.self) { o in o.t.shape.first ?? 1 }
        t.describe(TensorBox.self) { o in describeTensor(o.t) }
        return t
    }()
}

/// "tensor [2, 3]  min -1.2  mean 0.04  max 2.1  [0.5, -1.2, …]"
func describeTensor(_ t: Tensor) -> String {
    let v = t.scalars
    guard !v.isEmpty else { return "tensor \(t.shape) (empty)" }
    let mean = v.reduce(0, +) / Float(v.count)
    let shown = v.prefix(6).map { String(format: "%.4g", $0) }.joined(separator: ", ")
    return "tensor \(t.shape)  min \(String(format: "%.4g", v.min() ?? 0))  mean \(String(format: "%.4g", mean))  max \(String(format: "%.4g", v.max() ?? 0))  [\(shown)\(v.count > 6 ? ", …" : "")]"
}

/// A model (any Module).
final class ModelBox: TypedHost {
    let m: Module
    init(_ m: Module) { self.m = m }
    var hostType: HostType { ModelBox.type }

    static let type: HostType = {
        let t = HostType("model", doc: "A network: call it on a batch; summary(), parameters, train(), eval(), save(), load().")
        t.property(ModelBox.self, "parameters") { o in .int(o.m.parameterCount) }
        t.property(ModelBox.self, "zero_gamma_layers") { o in .list(ListRef((o.m as? ResNet)?.zeroGammaLayers.map { .string($0) } ?? [])) }
        func m(_ sig: String, _ doc: String, _ example: String, _ body: @escaping (Module, Args) throws -> Value) {
            t.method(ModelBox.self, sig, doc: doc, example: example) { box, a in try body(box.m, a) }
        }
        m("summary(input = nil)", "The layers as a table: output shapes, parameters and MACs, with totals.", "print(model.summary())") { mod, a in
            .string(try mod.summary(input: a.isNil(0) ? defaultInput(mod) : try a.list(0).map { v in Int(v.number ?? 1) }).table())
        }
        m("train()", "Training mode: batch statistics, dropout on.", "model.train()") { mod, _ in mod.train(); return .nil_ }
        m("eval()", "Evaluation mode: running statistics.", "model.eval()") { mod, _ in mod.eval(); return .nil_ }
        m("save(path)", "Saves the weights as safetensors with PyTorch names.", "model.save(\"model.safetensors\")") { mod, a in try mod.save(to: try a.string(0)); return .nil_ }
        m("load(path, strict = true)", "Loads safetensors weights; reports missing and unexpected names.", "model.load(\"model.safetensors\")") { mod, a in
            let r = try mod.load(from: try a.string(0), strict: try a.bool(1))
            return .string("loaded \(r.loaded.count) tensors, \(r.missing.count) missing, \(r.unexpected.count) unexpected")
        }
        m("named_parameters()", "Names and shapes of the parameters.", "model.named_parameters()[0]") { mod, _ in
            .list(ListRef(mod.namedParameters().map { .list(ListRef([.string($0.0), .list(ListRef($0.1.shape.map { .int($0) }))])) }))
        }
        t.binary = nil
        t.describe(ModelBox.self) { o in
            let m = o.m
            return "\(m.typeName): \(m.parameterCount) parameters (summary() lists the layers)"
        }
        return t
    }()
}

func defaultInput(_ m: Module) -> [Int] {
    if let r = m as? ResNet { return r.config.isSmall ? [r.config.inChannels, 28, 28] : [r.config.inChannels, 224, 224] }
    return [3, 224, 224]
}

/// A dataset.
final class DatasetBox: TypedHost {
    let d: any Dataset
    init(_ d: any Dataset) { self.d = d }
    var hostType: HostType { DatasetBox.type }
    static let type: HostType = {
        let t = HostType("dataset", doc: "Labelled images: len(d), d[i] gives [image, label], d.classes.")
        t.property(DatasetBox.self, "classes") { o in .list(ListRef(o.d.classNames.map { .string($0) })) }
        t.length(DatasetBox.self) { o in o.d.count }
        t.index(DatasetBox.self) { o, k in
            let d = o.d
            let (im, label) = try d.item(try sequenceIndex(k, count: d.count, what: "dataset"))
            return .list(ListRef([.host(TensorBox(try stack([im]).reshaped([im.channels, im.height, im.width]))), .int(label)]))
        }
        t.describe(DatasetBox.self) { o in let d = o.d; return "dataset of \(d.count) images, \(d.classNames.count) classes" }
        return t
    }()
}

/// A transform (one step or a composition).
final class TransformBox: TypedHost {
    let t: any Transform
    let name: String
    init(_ t: any Transform, _ name: String) { self.t = t; self.name = name }
    var hostType: HostType { TransformBox.type }
    static let type: HostType = {
        let t = HostType("transform", doc: "An image transform; walk(dataset, i) shows what it samples.")
        t.describe(TransformBox.self) { o in "transform \(o.name)" }
        return t
    }()
}

/// A batch from a loader.
final class BatchBox: TypedHost {
    let b: Batch
    init(_ b: Batch) { self.b = b }
    var hostType: HostType { BatchBox.type }
    static let type: HostType = {
        let t = HostType("batch", doc: "A batch: .images (a tensor), .labels (a list), .size.")
        t.property(BatchBox.self, "images") { o in .host(TensorBox(o.b.images)) }
        t.property(BatchBox.self, "labels") { o in .list(ListRef(o.b.labels.map { .int($0) })) }
        t.property(BatchBox.self, "size") { o in .int(o.b.labels.count) }
        t.describe(BatchBox.self) { o in "batch of \(o.b.labels.count), images \(o.b.images.shape)" }
        return t
    }()
}

/// A loader: iterable, one epoch per loop.
final class LoaderBox: TypedHost {
    let l: Loader
    init(_ l: Loader) { self.l = l }
    var hostType: HostType { LoaderBox.type }
    static let type: HostType = {
        let t = HostType("loader", doc: "Batches of a dataset; `for batch in loader` runs one epoch, reshuffled each time; .epoch counts the epochs drawn.")
        t.length(LoaderBox.self) { o in o.l.batchCount }
        t.property(LoaderBox.self, "dataset_size") { o in .int(o.l.dataset.count) }
        t.property(LoaderBox.self, "batch_size") { o in .int(o.l.batchSize) }
        t.property(LoaderBox.self, "epoch") { o in .int(o.l.epoch) }
        t.iterate(LoaderBox.self) { o in
            let it = try o.l.epochBatches()
            return { try it.nextBatch().map { .host(BatchBox($0)) } }
        }
        t.describe(LoaderBox.self) { o in let l = o.l; return "loader: \(l.dataset.count) images in \(l.batchCount) batches of \(l.batchSize)" }
        return t
    }()
}

/// A learning-rate schedule.
final class ScheduleBox: TypedHost {
    let s: any Schedule
    let name: String
    let steps: Int?
    init(_ s: any Schedule, _ name: String, steps: Int?) { self.s = s; self.name = name; self.steps = steps }
    var hostType: HostType { ScheduleBox.type }
    static let type: HostType = {
        let t = HostType("schedule", doc: "A learning rate per iteration: s.at(t), s.values(n), plot(s).")
        t.method(ScheduleBox.self, "at(t)", doc: "The rate at iteration t.", example: "lr.at(0)") { o, a in fv(o.s.lr(at: try a.int(0))) }
        t.method(ScheduleBox.self, "values(n)", doc: "The rates of the first n iterations.", example: "lr.values(20)") { o, a in .list(ListRef(o.s.values(try a.int(0)).map(fv))) }
        t.describe(ScheduleBox.self) { o in "schedule \(o.name)" }
        return t
    }()
}

/// Without a schedule the rate is whatever `opt.lr` was last set to.
struct CurrentLR: Schedule {
    let sgd: SGD
    func lr(at t: Int) -> Float { sgd.lr }
}

/// The optimizer of one model, with its schedule and the training step's state (a Trainer:
/// step count, low precision, clipping, weight averaging, checkpoints).
final class OptimizerBox: TypedHost {
    let sgd: SGD
    let schedule: (any Schedule)?
    /// Low-precision training (FP16 or BF16 with loss scaling), or nil for FP32.
    let scaler: LossScaler?
    let trainer: Trainer
    init(_ sgd: SGD, model: Module, schedule: (any Schedule)?, scaler: LossScaler? = nil, clipNorm: Float? = nil, ema: EMA? = nil) {
        self.sgd = sgd; self.schedule = schedule; self.scaler = scaler
        trainer = Trainer(model: model, optimizer: sgd, schedule: schedule ?? CurrentLR(sgd: sgd), clipNorm: clipNorm, ema: ema, lowPrecision: scaler)
    }
    var hostType: HostType { OptimizerBox.type }
    static let type: HostType = {
        let t = HostType("optimizer", doc: "SGD (Nesterov by default) for one model: .lr, .step_count, groups(); in low precision .loss_scale, .loss_scales (after every step), .skipped_steps, .underflow.")
        t.property(OptimizerBox.self, "lr", get: { o in fv(o.sgd.lr) }, set: { box, v in
            guard box.schedule == nil else { throw ScriptError("this optimizer follows a schedule; make one with a constant rate to set lr by hand") }
            box.sgd.lr = try number(v, "lr")
        })
        t.property(OptimizerBox.self, "step_count") { o in .int(o.trainer.step) }
        t.property(OptimizerBox.self, "loss_scale") { o in o.scaler.map { fv($0.scale) } ?? .nil_ }
        t.property(OptimizerBox.self, "skipped_steps") { o in .int(o.scaler?.skippedSteps ?? 0) }
        t.property(OptimizerBox.self, "underflow") { o in o.scaler.map { .float($0.underflowFraction) } ?? .nil_ }
        t.property(OptimizerBox.self, "loss_scales") { o in .list(ListRef((o.scaler?.history ?? []).map(fv))) }
        t.method(OptimizerBox.self, "groups()", doc: "Which tensors are in which weight-decay group.", example: "print(opt.groups())") { o, _ in .string(o.sgd.report()) }
        t.describe(OptimizerBox.self) { o in
            let s = o.sgd
            return "sgd(lr \(s.lr), momentum \(s.momentum)\(s.nesterov ? ", nesterov" : ""), groups: \(s.groups.map { "\($0.name) \($0.parameters.count)" }.joined(separator: ", ")))"
        }
        return t
    }()
}

/// A loss configuration.
final class LossBox: TypedHost {
    let loss: Loss
    init(_ loss: Loss) { self.loss = loss }
    var hostType: HostType { LossBox.type }
    static let type: HostType = {
        let t = HostType("loss", doc: "The training loss: cross-entropy with optional label smoothing and distillation.")
        t.method(LossBox.self, "targets(batch, classes = nil)",
                 doc: "What the loss trains toward for a batch (or mixup's [images, soft targets]): {targets: the label rows after mixing and smoothing, teacher: the teacher's softmax(r/T) or nil}.",
                 example: "let q = kd.targets(batch); q.teacher[0].tolist()") { box, a in
            let l = box.loss
            var images: Tensor
            var targets: Targets
            if case .host(let b as BatchBox) = a[0] {
                images = b.b.images; targets = .labels(b.b.labels)
            } else if let (x, q) = Bindings.mixedBatch(a[0]) {
                images = x; targets = .soft(q)
            } else {
                throw a.fail(0, "must be a batch or [images, soft targets] as mixup() and cutmix() return, got \(a[0].typeName)")
            }
            let teacher = try l.distillation.map { try $0.teacherTargets(images) }
            var classes = a.isNil(1) ? nil : try a.int(1)
            if classes == nil, case .soft(let q) = targets { classes = q.shape.last }
            if classes == nil { classes = teacher?.shape.last }
            guard let k = classes, k > 0 else { throw a.fail(1, "is needed to know the number of classes (no teacher and no soft targets)") }
            let rows = try targets.rows(classes: k, smoothing: l.smoothing, form: l.form)
            return .map(try Bindings.record(["targets": .host(TensorBox(rows)), "teacher": teacher.map { .host(TensorBox($0)) } ?? .nil_]))
        }
        t.describe(LossBox.self) { o in
            let l = o.loss
            return "cross_entropy(smoothing \(l.smoothing), form \(l.form.rawValue)\(l.distillation.map { ", distillation T=\($0.temperature)" } ?? ""))"
        }
        return t
    }()
}
