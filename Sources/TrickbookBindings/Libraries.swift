import Foundation
import TrickbookData
import TrickbookModels
import TrickbookScript
import TrickbookTensor
import TrickbookTraining

/// Every builtin that reaches the engine, the models, the data and the training: one row each.
/// The only place where the language meets the Swift objects.
public enum Bindings {
    public static func register(into i: Interpreter) {
        registerTensors(i)
        registerModels(i)
        registerData(i)
        registerTraining(i)
        registerPlots(i)
        registerTables(i)
        for t in [TensorBox.type, ModelBox.type, DatasetBox.type, TransformBox.type, BatchBox.type, LoaderBox.type,
                  ScheduleBox.type, OptimizerBox.type, LossBox.type, Progress.type] {
            i.register(type: t)
        }
    }

    /// Argument k as a host object of type T, or the uniform error: "argument 'model' must be a
    /// model, got int".
    static func arg<T: TypedHost>(_ a: Args, _ k: Int, _ type: T.Type) throws -> T {
        guard case .host(let o as T) = a[k] else {
            let name = T.type.name
            throw a.fail(k, "must be \("aeiou".contains(name.prefix(1)) ? "an" : "a") \(name), got \(a[k].typeName)")
        }
        return o
    }

    static func tensorArg(_ a: Args, _ k: Int) throws -> Tensor { try arg(a, k, TensorBox.self).t }

    static func shapeArg(_ a: Args, _ k: Int) throws -> [Int] {
        try a.list(k).enumerated().map { j, v in
            guard case .int(let n) = v, n >= 0 else { throw a.fail(k, "must be a list of sizes, item \(j) is \(v.repr)") }
            return n
        }
    }

    static func registerTensors(_ i: Interpreter) {
        i.row("tensor(values)", "A tensor from nested lists of numbers.", "tensor([[1, 2], [3, 4]])") { a in
            func unwrap(_ v: Value) throws -> Any {
                switch v {
                case .list(let l): return try l.items.map(unwrap)
                case .int(let n): return n
                case .float(let d): return d
                case .bool(let b): return b
                default: throw a.fail(0, "must hold only numbers and lists, found \(v.typeName)")
                }
            }
            return .host(TensorBox(try Tensor.nested(try unwrap(a[0]))))
        }
        i.row("zeros(shape)", "A tensor of zeros.", "zeros([2, 3])") { a in .host(TensorBox(try Tensor.zeros(try shapeArg(a, 0)))) }
        i.row("ones(shape)", "A tensor of ones.", "ones([2, 3])") { a in .host(TensorBox(try Tensor.ones(try shapeArg(a, 0)))) }
        i.row("randn(shape)", "Normal random values (the global seed).", "randn([2, 3])") { a in .host(TensorBox(try Tensor.randn(try shapeArg(a, 0)))) }
        i.row("rand(shape)", "Uniform random values in [0, 1).", "rand([4])") { a in .host(TensorBox(try Tensor.rand(try shapeArg(a, 0)))) }
        i.row("arange(start, stop = nil, step = 1)", "Evenly spaced values.", "arange(5)") { a in
            let (s, e) = a.isNil(1) ? (0, try a.number(0)) : (try a.number(0), try a.number(1))
            return .host(TensorBox(try Tensor.arange(Float(s), Float(e), step: Float(try a.number(2)))))
        }
        i.row("manual_seed(n)", "Seeds the global generator.", "manual_seed(0)") { a in Random.seed(UInt64(truncatingIfNeeded: try a.int(0))); return .nil_ }
        i.row("no_grad(f)", "Calls f() without recording gradients.", "no_grad(fn() => (w * 2).sum()).requires_grad  # false") { a in
            try withNoGrad { try i.callValue(a[0], []) }
        }
    }

    static func registerModels(_ i: Interpreter) {
        i.row("resnet(depth, variant = \"b\", classes = 1000, in_channels = 3, width = nil, zero_gamma = false, se = false, activation = \"relu\", groups = 1, width_per_group = 64, init = \"xavier\", seed = 0)",
              "A ResNet: depths 18, 34, 50, 101, 152 (ImageNet) or 20, 32, 44, 56, 110 (small images); variants a, b, c, d as in the paper.",
              "resnet(20, variant: \"d\", in_channels: 1, classes: 10, zero_gamma: true)") { a in
            var c = ResNetConfig(depth: try a.int(0, oneOf: ResNetConfig.imagenetDepths + ResNetConfig.smallDepths))
            c.variant = try a.string(1, oneOf: ["a", "b", "c", "d"])
            c.classes = try a.int(2)
            c.inChannels = try a.int(3)
            c.width = a.isNil(4) ? nil : try a.int(4)
            c.zeroGamma = try a.bool(5)
            c.squeezeExcite = try a.bool(6)
            c.activation = try a.string(7, oneOf: ["relu", "swish"])
            c.groups = try a.int(8)
            c.widthPerGroup = try a.int(9)
            c.initializer = try a.string(10, oneOf: ["xavier", "kaiming"]) == "xavier" ? .xavier : .kaiming
            c.seed = UInt64(truncatingIfNeeded: try a.int(11))
            return .host(ModelBox(try ResNet(c)))
        }
        i.row("diff(a, b, input = nil)", "What changed from model a to model b: layers, parameters and MACs.", "diff(resnet(50, variant: \"a\"), resnet(50, variant: \"d\"))") { a in
            let x = try arg(a, 0, ModelBox.self)
            let y = try arg(a, 1, ModelBox.self)
            let input = a.isNil(2) ? defaultInput(x.m) : try shapeArg(a, 2)
            return .string(ModelSummary.diff(try x.m.summary(input: input), try y.m.summary(input: input)))
        }
        i.row("activations(model, images, every = false)",
              "Output statistics of each residual block (every module with every: true) for a batch: records {layer, kind, shape, mean, std}, evaluation mode.",
              "print(table(activations(model, batch.images)))") { a in
            let m = try arg(a, 0, ModelBox.self)
            let x = try arg(a, 1, TensorBox.self)
            let every = try a.bool(2)
            let stats = try m.m.activations(x.t) { every || $0 is ResidualBlock }
            return .list(ListRef(try stats.map { s in
                .map(try ordered([("layer", .string(s.name)), ("kind", .string(s.kind)), ("shape", .list(ListRef(s.shape.map { .int($0) }))),
                                  ("mean", .float(s.mean)), ("std", .float(s.std))]))
            }))
        }
        i.row("predict(model, images)", "The model's logits for a tensor of images, in evaluation mode without gradients.", "predict(model, batch.images).argmax(axis: 1)") { a in
            let m = try arg(a, 0, ModelBox.self)
            m.m.eval()
            return .host(TensorBox(try withNoGrad { try m.m(try tensorArg(a, 1)) }))
        }
    }

    static func transform(_ a: Args, _ k: Int) throws -> (any Transform)? {
        if a.isNil(k) { return nil }
        guard case .host(let t as TransformBox) = a[k] else { throw a.fail(k, "must be a transform, got \(a[k].typeName)") }
        return t.t
    }

    static func dataset(_ a: Args, _ k: Int) throws -> any Dataset {
        guard case .host(let d as DatasetBox) = a[k] else { throw a.fail(k, "must be a dataset, got \(a[k].typeName)") }
        return d.d
    }

    static func registerData(_ i: Interpreter) {
        i.row("fashion_mnist(split, limit = nil)", "Fashion-MNIST (\"train\": 60,000 images, \"test\": 10,000), 28×28 gray, 10 classes.", "fashion_mnist(\"train\", limit: 2000)") { a in
            .host(DatasetBox(try FashionMNIST.dataset(try a.string(0, oneOf: ["train", "test"]), limit: a.isNil(1) ? nil : try a.int(1))))
        }
        i.row("image_folder(root, channels = nil)", "PNG images in root/<class>/*.png.", "image_folder(\"pngs\")  # pngs/<class>/*.png") { a in
            .host(DatasetBox(try ImageFolder(try a.string(0), channels: a.isNil(1) ? nil : try a.int(1))))
        }
        i.row("cifar(files, hundred = false)", "CIFAR-10 (or CIFAR-100's fine labels) from its binary batch files: a path or a list of paths.",
              "cifar(\"cifar/data_batch_1.bin\")") { a in
            let files: [String]
            if case .list = a[0] { files = try a.list(0).map { v in guard case .string(let p) = v else { throw a.fail(0, "must be a path or a list of paths") }; return p } }
            else { files = [try a.string(0)] }
            guard !files.isEmpty else { throw a.fail(0, "must name at least one file") }
            return .host(DatasetBox(try CIFAR.load(files: files, hundred: try a.bool(1))))
        }
        i.row("split(dataset, validation, seed = 0)", "A random split by seed: [train, validation] with `validation` images in the second.",
              "let parts = split(train, 16, seed: 1); len(parts[1])") { a in
            let (t, v) = try dataset(a, 0).split(validation: try a.int(1), seed: UInt64(truncatingIfNeeded: try a.int(2)))
            return .list(ListRef([.host(DatasetBox(t)), .host(DatasetBox(v))]))
        }
        i.row("subset(dataset, count)", "The first count images of a dataset.", "subset(train, 10)") { a in .host(DatasetBox(try dataset(a, 0).limited(try a.int(1)))) }
        i.row("pad_crop(size, padding = 4)", "Zero padding, then a random size×size crop.", "pad_crop(28, padding: 2)") { a in .host(TransformBox(PadCrop(try a.int(0), padding: try a.int(1)), "pad_crop")) }
        i.row("hflip(p = 0.5)", "Mirrors left–right with probability p.", "hflip(p: 0.5)") { a in .host(TransformBox(HorizontalFlip(p: try a.number(0)), "hflip")) }
        i.row("random_resized_crop(size, min_area = 0.08)", "The paper's crop: area 8–100%, aspect 3/4–4/3, resized to size.", "random_resized_crop(28, min_area: 0.25)") { a in
            .host(TransformBox(try RandomResizedCrop(try a.int(0), scale: (try a.number(1), 1)), "random_resized_crop"))
        }
        i.row("hsv_jitter(low = 0.6, high = 1.4)", "Hue, saturation and brightness scaled by coefficients in [low, high].", "hsv_jitter(low: 0.6, high: 1.4)") { a in .host(TransformBox(HSVJitter(try a.number(0), try a.number(1)), "hsv_jitter")) }
        i.row("pca_lighting(std = 0.1, data = nil)", "AlexNet's lighting noise; statistics from `data` (needed for gray) or ImageNet's.", "pca_lighting(data: train)") { a in
            let t = a.isNil(1) ? PCALighting(alphaStd: Float(try a.number(0))) : try PCALighting.estimate(from: try dataset(a, 1), alphaStd: Float(try a.number(0)))
            return .host(TransformBox(t, "pca_lighting"))
        }
        i.row("normalize(mean = nil, std = nil)", "(x − mean)/std per channel, on 0–255 values; ImageNet's statistics by default.", "normalize(mean: [72.94], std: [90.02])") { a in
            let mean = a.isNil(0) ? Normalize.imagenetMean : try a.list(0).map { Float($0.number ?? 0) }
            let std = a.isNil(1) ? Normalize.imagenetStd : try a.list(1).map { Float($0.number ?? 1) }
            return .host(TransformBox(try Normalize(mean: mean, std: std), "normalize"))
        }
        i.row("cutout(size)", "Zeroes a random size×size square.", "cutout(8)") { a in .host(TransformBox(Cutout(size: try a.int(0)), "cutout")) }
        i.row("random_erasing(p = 0.5)", "Erases a random box (area 2–33%) with probability p.", "random_erasing(p: 0.5)") { a in .host(TransformBox(RandomErasing(p: try a.number(0)), "random_erasing")) }
        i.row("compose(steps)", "Transforms in order.", "compose([pad_crop(28), hflip(), normalize()])") { a in
            let steps = try a.list(0).enumerated().map { k, v -> any Transform in
                guard case .host(let t as TransformBox) = v else { throw a.fail(0, "item \(k) is not a transform but \(v.typeName)") }
                return t.t
            }
            return .host(TransformBox(Compose(steps), "compose"))
        }
        i.row("walk(dataset, index, transform, seed = 0)", "Walks one image through a transform: what each step sampled.", "walk(train, 0, augment)") { a in
            let d = try dataset(a, 0)
            guard let t = try transform(a, 2) else { throw a.fail(2, "must be a transform") }
            let (im, _) = try d.item(try sequenceIndex(a[1], count: d.count, what: "dataset"))
            var log: [Sampled] = []
            _ = try t.apply(im, Generator(seed: UInt64(truncatingIfNeeded: try a.int(3))), &log)
            return .list(ListRef(log.map { .string($0.description) }))
        }
        i.row("loader(dataset, batch, shuffle = false, transform = nil, workers = 1, seed = 0, drop_last = false)",
              "Batches of a dataset, shuffled per epoch by seed, augmented on worker threads.", "loader(train, 128, shuffle: true, transform: augment)") { a in
            .host(LoaderBox(try Loader(try dataset(a, 0), batchSize: try a.int(1), shuffle: try a.bool(2), dropLast: try a.bool(6), transform: try transform(a, 3),
                                       workers: try a.int(4), seed: UInt64(truncatingIfNeeded: try a.int(5)))))
        }
        i.row("show_batch(dataset, transform = nil, count = 16, to = \"batch.png\", seed = 0)", "Writes a PNG grid of images with their labels.", "show_batch(train, transform: augment, to: \"batch.png\")") { a in
            let d = try dataset(a, 0), t = try transform(a, 1), n = min(try a.int(2), d.count)
            var images: [Image] = [], captions: [String] = []
            for k in 0..<n {
                var (im, label) = try d.item(k)
                if let t { im = try t(im, Generator(seed: UInt64(truncatingIfNeeded: try a.int(4)) &+ UInt64(k))) }
                images.append(im)
                captions.append(d.classNames.indices.contains(label) ? d.classNames[label] : String(label))
            }
            let path = try a.string(3)
            try writeGrid(images, captions: captions, columns: 8, to: path)
            return .string(path)
        }
        i.row("show_images(images, captions = nil, to = \"images.png\", columns = 8)",
              "Writes a PNG grid of a tensor of images [N, C, H, W] (a batch, or mixup's mixed images), each scaled by its own range, with optional captions.",
              "show_images(mixup(batch, 10, seed: 1)[0], to: \"mixed.png\")") { a in
            let x = try tensorArg(a, 0)
            guard x.rank == 4, x.shape[0] > 0 else { throw a.fail(0, "must be images [N, C, H, W], got shape \(x.shape)") }
            let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let captions = try a.isNil(1) ? [String](repeating: "", count: n) : a.list(1).map(\.str)
            guard captions.count == n else { throw a.fail(1, "must have one caption per image (\(n)), got \(captions.count)") }
            let v = x.scalars, size = c * h * w
            let images = (0..<n).map { k in Image(channels: c, height: h, width: w, pixels: Array(v[(k * size)..<((k + 1) * size)])) }
            let path = try a.string(2)
            try writeGrid(images, captions: captions, columns: try a.int(3), to: path)
            return .string(path)
        }
        i.row("show_predictions(model, dataset, transform = nil, count = 16, to = \"predictions.png\")", "A PNG grid of images captioned with the model's prediction (and the truth when it differs).", "show_predictions(model, test, count: 8, to: \"predictions.png\")") { a in
            let m = try arg(a, 0, ModelBox.self)
            let d = try dataset(a, 1), t = try transform(a, 2), n = min(try a.int(3), d.count)
            var raw: [Image] = [], shown: [Image] = [], labels: [Int] = []
            for k in 0..<n {
                let (im, label) = try d.item(k)
                raw.append(im)
                shown.append(try t.map { try $0(im, Generator(seed: 0)) } ?? im)
                labels.append(label)
            }
            m.m.eval()
            let predictions = try withNoGrad { try m.m(try stack(shown)).argmax(axis: 1) }.scalars.map { Int($0) }
            let name = { (k: Int) in d.classNames.indices.contains(k) ? d.classNames[k] : String(k) }
            let captions = zip(predictions, labels).map { p, l in p == l ? name(p) : "\(name(p)) (\(name(l)))" }
            let path = try a.string(4)
            try writeGrid(raw, captions: captions, columns: 8, to: path)
            return .int(zip(predictions, labels).filter { $0 == $1 }.count)
        }
        i.row("mixup(batch, classes, alpha = 0.2, seed = 0)", "mixup: [images, soft targets] mixed with a shuffled copy, λ ~ Beta(α, α).", "let mixed = mixup(batch, 10, alpha: 0.2, seed: 1)  # [images, soft targets, lambda]") { a in
            let b = try arg(a, 0, BatchBox.self)
            let m = try mixup(b.b.images, labels: b.b.labels, classes: try a.int(1), alpha: try a.number(2), generator: Generator(seed: UInt64(truncatingIfNeeded: try a.int(3))))
            return .list(ListRef([.host(TensorBox(m.images)), .host(TensorBox(m.targets)), .float(m.lambda)]))
        }
        i.row("cutmix(batch, classes, alpha = 1.0, seed = 0)", "CutMix: [images, soft targets, λ] with a pasted box; λ is the area kept.", "let mixed = cutmix(batch, 10, seed: 1)  # [images, soft targets, lambda]") { a in
            let b = try arg(a, 0, BatchBox.self)
            let m = try cutmix(b.b.images, labels: b.b.labels, classes: try a.int(1), alpha: try a.number(2), generator: Generator(seed: UInt64(truncatingIfNeeded: try a.int(3))))
            return .list(ListRef([.host(TensorBox(m.images)), .host(TensorBox(m.targets)), .float(m.lambda)]))
        }
    }

    static func schedule(_ a: Args, _ k: Int) throws -> ScheduleBox {
        guard case .host(let s as ScheduleBox) = a[k] else { throw a.fail(k, "must be a schedule, got \(a[k].typeName)") }
        return s
    }

    static func registerTraining(_ i: Interpreter) {
        i.row("linear_scaling(base, batch)", "The linear scaling rule: base · batch / 256.", "linear_scaling(0.1, 1024)  # 0.4") { a in
            fv(linearScaledLR(Float(try a.number(0)), batch: try a.int(1)))
        }
        i.row("constant(lr)", "The same rate at every step.", "constant(0.1)") { a in .host(ScheduleBox(ConstantLR(Float(try a.number(0))), "constant", steps: nil)) }
        i.row("cosine(lr, steps)", "Cosine decay over steps: ½(1 + cos(πt/T))·η.", "cosine(0.1, 1000)") { a in
            .host(ScheduleBox(CosineLR(Float(try a.number(0)), total: try a.int(1)), "cosine", steps: try a.int(1)))
        }
        i.row("step_decay(lr, milestones, gamma = 0.1)", "η·γ^k after the k-th milestone (iterations).", "step_decay(0.1, [3000, 6000])") { a in
            .host(ScheduleBox(StepLR(Float(try a.number(0)), milestones: try a.list(1).map { Int($0.number ?? 0) }, gamma: Float(try a.number(2))), "step", steps: nil))
        }
        i.row("polynomial(lr, steps, power = 2.0)", "Polynomial decay: η·(1 − t/T)^p.", "polynomial(0.1, 1000, power: 2.0)") { a in
            .host(ScheduleBox(PolynomialLR(Float(try a.number(0)), total: try a.int(1), power: Float(try a.number(2))), "polynomial", steps: try a.int(1)))
        }
        i.row("warmup(schedule, steps)", "Linear warmup: η·i/m over the first m steps, then the schedule.", "warmup(cosine(0.1, 900), 100)") { a in
            let s = try schedule(a, 0), m = try a.int(1)
            return .host(ScheduleBox(WarmupLR(s.s, steps: m), "warmup(\(s.name))", steps: s.steps.map { $0 + m }))
        }
        i.row("sgd(model, lr, momentum = 0.9, nesterov = true, weight_decay = 0.0001, no_bias_decay = false, precision = \"fp32\", loss_scale = 65536.0, clip_norm = nil, ema = nil)",
              "Nesterov SGD (PyTorch's form); lr is a number or a schedule; no_bias_decay decays only conv and linear weights; precision fp16 or bf16 trains with rounded weights, activations and gradients and dynamic loss scaling from loss_scale (.loss_scale, .loss_scales, .skipped_steps, .underflow); clip_norm caps the gradients' global L2 norm; ema keeps an average of the weights with that decay (with_ema).",
              "sgd(model, lr, weight_decay: 5e-4, no_bias_decay: true)") { a in
            let m = try arg(a, 0, ModelBox.self)
            var sched: (any Schedule)? = nil
            var base: Float = 0.1
            if case .host(let s as ScheduleBox) = a[1] { sched = s.s; base = s.s.lr(at: 0) } else { base = Float(try a.number(1)) }
            let opt = try SGD(m.m, lr: base, momentum: Float(try a.number(2)), nesterov: try a.bool(3), weightDecay: Float(try a.number(4)), noBiasDecay: try a.bool(5))
            let precision = try a.string(6, oneOf: ["fp32", "fp16", "bf16"])
            let scale = Float(try a.number(7))
            guard scale > 0, scale.isFinite else { throw a.fail(7, "must be a positive number, got \(a[7].repr)") }
            let scaler = precision == "fp32" ? nil : LossScaler(format: precision == "fp16" ? .float16 : .bfloat16, initialScale: scale)
            let clip = a.isNil(8) ? nil : Float(try a.number(8))
            if let clip, !(clip > 0) { throw a.fail(8, "must be positive, got \(a[8].repr)") }
            let decay = a.isNil(9) ? nil : Float(try a.number(9))
            if let decay, !(decay > 0 && decay < 1) { throw a.fail(9, "must be a decay between 0 and 1, got \(a[9].repr)") }
            return .host(OptimizerBox(opt, model: m.m, schedule: sched, scaler: scaler, clipNorm: clip, ema: decay.map { EMA(m.m, decay: $0) }))
        }
        i.row("with_ema(opt, f)", "Calls f() with the optimizer's averaged weights (sgd(..., ema: 0.999)) in the model, then puts the trained ones back.",
              "let averaged = sgd(model, 0.1, ema: 0.99); with_ema(averaged, fn() => evaluate_batch(model, batch).top1)") { a in
            let o = try arg(a, 0, OptimizerBox.self)
            guard let ema = o.trainer.ema else { throw a.fail(0, "keeps no average: make it with sgd(..., ema: 0.999)") }
            return try ema.withAveragedWeights { try i.callValue(a[1], []) }
        }
        i.row("save_checkpoint(path, opt, batches = nil)",
              "Writes everything needed to resume (weights, momentum, averages, schedule position, loss scale, and the loader's epoch) to one file, atomically.",
              "save_checkpoint(\"run.ckpt\", opt, batches)") { a in
            let o = try arg(a, 1, OptimizerBox.self)
            if !a.isNil(2) { o.trainer.epoch = try arg(a, 2, LoaderBox.self).l.epoch }
            try o.trainer.save(to: try a.string(0))
            return .nil_
        }
        i.row("load_checkpoint(path, opt, batches = nil)",
              "Restores a save_checkpoint file into the optimizer's model and state (and the loader's epoch); returns the epochs done, for fit(..., start: done + 1).",
              "load_checkpoint(\"run.ckpt\", opt, batches)") { a in
            let o = try arg(a, 1, OptimizerBox.self)
            try o.trainer.resume(from: try a.string(0))
            if !a.isNil(2) { try arg(a, 2, LoaderBox.self).l.epoch = o.trainer.epoch }
            return .int(o.trainer.epoch)
        }
        i.row("cross_entropy(smoothing = 0.0, form = \"paper\", teacher = nil, temperature = 20.0)",
              "Cross-entropy; label smoothing in the paper's form (1 − ε, ε/(K − 1)) or \"uniform\" (PyTorch's); knowledge distillation from a teacher model at temperature T.",
              "cross_entropy(smoothing: 0.1)") { a in
            var kd: Distillation? = nil
            if !a.isNil(2) {
                let t = try arg(a, 2, ModelBox.self)
                kd = try Distillation(teacher: t.m, temperature: Float(try a.number(3)))
            }
            return .host(LossBox(Loss(smoothing: Float(try a.number(0)), form: try a.string(1, oneOf: ["paper", "uniform"]) == "paper" ? .paper : .uniform, distillation: kd)))
        }
        i.row("train_step(model, batch, opt, loss, targets = nil)", "One step: forward, loss, backward, SGD, schedule. Returns {loss, lr, size, skipped, correct}, correct counted from the step's own forward pass.", "train_step(model, batch, opt, loss).loss") { a in
            let m = try arg(a, 0, ModelBox.self)
            let b = try arg(a, 1, BatchBox.self)
            let o = try arg(a, 2, OptimizerBox.self)
            let l = try arg(a, 3, LossBox.self)
            let trainer = o.trainer
            guard trainer.model === m.m else { throw a.fail(2, "was made by sgd() for another model") }
            trainer.loss = l.loss
            var images = b.b.images
            let targets: Targets
            if a.isNil(4) { targets = .labels(b.b.labels) } else {
                guard let (x, q) = mixedBatch(a[4]) else { throw a.fail(4, "must be [images, soft targets] as mixup() and cutmix() return") }
                images = x
                targets = .soft(q)
            }
            let r = try trainer.trainStep(images, targets)
            return .map(try record(["loss": fv(r.loss), "lr": fv(r.lr), "size": .int(b.b.labels.count), "skipped": .bool(r.skipped), "correct": .int(r.correct)]))
        }
        i.row("evaluate_batch(model, batch, precision = \"fp32\")",
              "Correct top-1 and top-5 counts and the summed loss of a batch, in evaluation mode; precision fp16 or bf16 runs the model as low-precision training did.",
              "evaluate_batch(model, batch).top1") { a in
            let m = try arg(a, 0, ModelBox.self)
            let b = try arg(a, 1, BatchBox.self)
            let precision = try a.string(2, oneOf: ["fp32", "fp16", "bf16"])
            m.m.eval()
            let logits = try precision == "fp32" ? withNoGrad { try m.m(b.b.images) }
                : lowPrecisionLogits(m.m, b.b.images, format: precision == "fp16" ? .float16 : .bfloat16)
            var metrics = Metrics(classes: logits.shape[1])
            let loss = try withNoGrad { try crossEntropy(logits, labels: b.b.labels) }.item
            try metrics.add(logits: logits, labels: b.b.labels)
            return .map(try record(["top1": .int(metrics.top1Correct), "top5": .int(metrics.top5Correct), "loss": .float(Double(loss) * Double(b.b.labels.count)), "size": .int(b.b.labels.count)]))
        }
        i.row("precise_bn(model, batches, count = 50)",
              "Precise BN: every batch norm's running statistics become the exact average over `count` batches with the final weights; returns the number of batches used.",
              "precise_bn(model, batches, count: 4)") { a in
            let m = try arg(a, 0, ModelBox.self)
            let l = try arg(a, 1, LoaderBox.self)
            let count = try a.int(2)
            guard count > 0 else { throw a.fail(2, "must be positive, got \(count)") }
            // Borrow one epoch's order without moving the loader on, so training's data order and
            // checkpoints are the same with or without precise BN.
            let epoch = l.l.epoch
            defer { l.l.epoch = epoch }
            let it = try l.l.epochBatches()
            var used = 0
            return .int(try preciseBatchNorm(m.m) {
                guard used < count, let b = try it.nextBatch() else { return nil }
                used += 1
                return b.images
            })
        }
        i.row("smooth_targets(labels, classes, epsilon, form = \"paper\")", "The smoothed target rows for labels (to inspect label smoothing).", "smooth_targets([2], 3, 0.1)") { a in
            let labels = try a.list(0).map { Int($0.number ?? -1) }
            let q = try smoothTargets(oneHot(labels, classes: try a.int(1)), epsilon: Float(try a.number(2)), form: try a.string(3, oneOf: ["paper", "uniform"]) == "paper" ? .paper : .uniform)
            return .host(TensorBox(q))
        }
    }

    /// A record with its fields in the given order (tables show them so).
    static func ordered(_ fields: [(String, Value)]) throws -> MapRef {
        let m = MapRef()
        for (k, v) in fields { try m.set(.string(k), v) }
        return m
    }

    /// A record with its fields in alphabetical order.
    static func record(_ d: [String: Value]) throws -> MapRef {
        try ordered(d.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// [images, soft targets, ...] as mixup() and cutmix() return them, or nil for anything else.
    static func mixedBatch(_ v: Value) -> (Tensor, Tensor)? {
        guard case .list(let l) = v, l.items.count >= 2, case .host(let x as TensorBox) = l.items[0], case .host(let q as TensorBox) = l.items[1] else { return nil }
        return (x.t, q.t)
    }
}
