import TrickbookMPI
import TrickbookData
import TrickbookTraining
import TrickbookScript
import TrickbookTensor

/// Data: datasets, per-image transforms, loaders, and mixing batches (mixup, CutMix).
enum DataLibrary: Library {
    static let rows: [Row] = [
        Row(
            "fashion_mnist(split, limit = nil)",
            doc: "Fashion-MNIST (\"train\": 60,000 images, \"test\": 10,000), 28×28 gray, 10 classes.",
            example: "fashion_mnist(\"train\", limit: 2000)"
        ) { a in
            dataset(
                try FashionMNIST.dataset(
                    try a.string("split", oneOf: ["train", "test"]),
                    limit: try a.isNil("limit") ? nil : try a.int("limit", in: 0...Int.max)))
        },
        Row(
            "image_folder(root, channels = nil)",
            doc: "PNG images in root/<class>/*.png.",
            example: "image_folder(\"pngs\")  # pngs/<class>/*.png"
        ) { a in
            dataset(try ImageFolder(try a.string("root"), channels: try a.intOrNil("channels")))
        },
        Row(
            "cifar(files, hundred = false)",
            doc: "CIFAR-10 (or CIFAR-100's fine labels) from its binary batch files: a path or a list of paths.",
            example: "cifar(\"cifar/data_batch_1.bin\")", cifar),
        Row(
            "split(dataset, validation, seed = nil)",
            doc: "A random split: [train, validation] with `validation` images in the second.",
            example: "let parts = split(train, 16, seed: 1); len(parts[1])"
        ) { a in
            let (t, v) = try a.host("dataset", DatasetBox.self).dataset.split(
                validation: try a.int("validation"), seed: try a.seed())
            return list([dataset(t), dataset(v)])
        },
        Row("subset(dataset, count)", doc: "The first count images of a dataset.", example: "subset(train, 10)") { a in
            dataset(try a.host("dataset", DatasetBox.self).dataset.limited(try a.int("count")))
        },
        Row(
            "pad_crop(size, padding = 4)",
            doc: "Zero padding, then a random size×size crop.",
            example: "pad_crop(28, padding: 2)"
        ) { a in
            transform(PadCrop(try a.int("size", in: 1...side), padding: try a.int("padding", in: 0...side)), "pad_crop")
        },
        Row("hflip(p = 0.5)", doc: "Mirrors left–right with probability p.", example: "hflip(p: 0.5)") { a in
            transform(HorizontalFlip(p: try a.number("p", in: 0...1)), "hflip")
        },
        Row(
            "random_resized_crop(size, min_area = 0.08)",
            doc: "The paper's crop: area 8–100%, aspect 3/4–4/3, resized to size.",
            example: "random_resized_crop(28, min_area: 0.25)"
        ) { a in
            transform(
                try RandomResizedCrop(try a.int("size", in: 1...side), scale: (try a.number("min_area"), 1)),
                "random_resized_crop")
        },
        Row(
            "hsv_jitter(low = 0.6, high = 1.4)",
            doc: "Hue, saturation and brightness scaled by coefficients in [low, high].",
            example: "hsv_jitter(low: 0.6, high: 1.4)"
        ) { a in try hsvJitter(a) },
        Row(
            "pca_lighting(std = 0.1, data = nil)",
            doc: "AlexNet's lighting noise; statistics from `data` (needed for gray) or ImageNet's.",
            example: "pca_lighting(data: train)", pcaLighting),
        Row(
            "normalize(mean = nil, std = nil)",
            doc: "(x − mean)/std per channel, on 0–255 values; ImageNet's statistics by default.",
            example: "normalize(mean: [72.94], std: [90.02])"
        ) { a in
            let mean = try a.isNil("mean") ? Normalize.imagenetMean : try a.floats("mean")
            let std = try a.isNil("std") ? Normalize.imagenetStd : try a.floats("std")
            return transform(try Normalize(mean: mean, std: std), "normalize")
        },
        Row(
            "cutout(size)",
            doc: "Zeroes a random size×size square.",
            example: "cutout(8)"
        ) { a in transform(Cutout(size: try a.int("size", in: 0...side)), "cutout") },
        Row(
            "random_erasing(p = 0.5)",
            doc: "Erases a random box (area 2–33%) with probability p.",
            example: "random_erasing(p: 0.5)"
        ) { a in
            transform(RandomErasing(p: try a.number("p", in: 0...1)), "random_erasing")
        },
        Row(
            "compose(steps)",
            doc: "Transforms in order.",
            example: "compose([pad_crop(28), hflip(), normalize()])"
        ) { a in
            transform(
                Compose(try a.list("steps").enumerated().map { k, v in try transformValue(v, a, "steps", item: k) }),
                "compose")
        },
        Row(
            "walk(dataset, index, transform, seed = nil)",
            doc: "Walks one image through a transform: what each step sampled.",
            example: "walk(train, 0, augment)", walk),
        Row(
            "loader(dataset, batch, shuffle = false, transform = nil, workers = 1, seed = nil, drop_last = false, shard = true)",
            doc: """
                Batches of a dataset, shuffled per epoch by seed, augmented on worker threads (a transform \
                written in the language too, as a copy, when it uses only functions and plain values; printing the \
                loader says where it runs); `for b in batches` runs an epoch, next(batches) steps. Under MPI, batch \
                is per rank and each rank gets its share of every global batch (world_size × batch images of one \
                permutation), unless shard is false.
                """,
            example: "loader(train, 128, shuffle: true, transform: augment)", loader),
        Row(
            "mixup(batch, classes, alpha = 0.2, seed = nil)",
            doc: "mixup: images mixed with a shuffled copy, λ ~ Beta(α, α); [images, soft targets, λ].",
            example: """
                let mixed = mixup(batch, 10, alpha: 0.2, seed: 1)  # mixed.images, mixed.targets, mixed.lambda
                """
        ) { a in
            let b = try a.host("batch", BatchBox.self).batch
            return .host(
                MixedBox(
                    try mixup(
                        b.images, labels: b.labels, classes: try a.int("classes"), alpha: try a.number("alpha"),
                        generator: Generator(seed: try a.seed()))))
        },
        Row(
            "cutmix(batch, classes, alpha = 1.0, seed = nil)",
            doc: "CutMix: a box pasted from a shuffled copy; λ is the area kept; [images, soft targets, λ].",
            example: "let mixed = cutmix(batch, 10, seed: 1)  # mixed.images, mixed.targets, mixed.lambda"
        ) { a in
            let b = try a.host("batch", BatchBox.self).batch
            return .host(
                MixedBox(
                    try cutmix(
                        b.images, labels: b.labels, classes: try a.int("classes"), alpha: try a.number("alpha"),
                        generator: Generator(seed: try a.seed()))))
        },
    ]

    static let types: [HostType] = [DatasetBox.type, TransformBox.type, BatchBox.type, LoaderBox.type, MixedBox.type]

    static func dataset(_ d: any Dataset) -> Value { .host(DatasetBox(d)) }

    /// The largest image side a transform may produce or pad to: beyond it one image alone would
    /// take gigabytes.
    static let side = 8192

    static func hsvJitter(_ a: Args) throws -> Value {
        let low = try a.number("low", in: 0...100)
        let high = try a.number("high", in: 0...100)
        guard low <= high else { throw a.fail("low", "must not exceed high, got \(low) and \(high)") }
        return transform(HSVJitter(low, high), "hsv_jitter")
    }
    static func transform(_ t: any Transform, _ name: String) -> Value { .host(TransformBox(t, name)) }

    /// A transform, or a script function fn(image, rng) used as one.
    static func transformValue(_ v: Value, _ a: Args, _ name: String, item: Int? = nil) throws -> any Transform {
        if case .function = v { return ScriptTransform(callback: Callback(v, a.interpreter)) }
        guard case .host(let t as TransformBox) = v else {
            throw a.fail(name, "\(item.map { "item \($0) " } ?? "")must be a transform, got \(v.typeName)")
        }
        return t.transform
    }

    static func transformOrNil(_ a: Args, _ name: String = "transform") throws -> (any Transform)? {
        try a.isNil(name) ? nil : try transformValue(try a.value(name), a, name)
    }

    static func cifar(_ a: Args) throws -> Value {
        let files: [String]
        if case .list = try a.value("files") {
            files = try a.list("files").map { v in
                guard case .string(let p) = v else { throw a.fail("files", "must be a path or a list of paths") }
                return p
            }
        } else {
            files = [try a.string("files")]
        }
        guard !files.isEmpty else { throw a.fail("files", "must name at least one file") }
        return dataset(try CIFAR.load(files: files, hundred: try a.bool("hundred")))
    }

    static func pcaLighting(_ a: Args) throws -> Value {
        let std = try a.float("std")
        let data = try a.hostOrNil("data", DatasetBox.self)
        return transform(
            try data.map { try PCALighting.estimate(from: $0.dataset, alphaStd: std) } ?? PCALighting(alphaStd: std),
            "pca_lighting")
    }

    static func walk(_ a: Args) throws -> Value {
        let d = try a.host("dataset", DatasetBox.self).dataset
        let t = try transformValue(try a.value("transform"), a, "transform")
        let (im, _) = try d.item(try sequenceIndex(try a.value("index"), count: d.count, what: "dataset"))
        var log: [Sampled] = []
        _ = try t.apply(im, Generator(seed: try a.seed()), &log)
        return list(log.map { .string($0.description) })
    }

    static func loader(_ a: Args) throws -> Value {
        let workers = try a.int("workers", in: 0...64)
        var transform = try transformOrNil(a), note: String?
        if workers > 0, let t = transform as? ScriptTransform {
            // Copied to the workers when it can be; else it runs on the session's thread.
            do {
                let copy = try a.interpreter.standalone(t.callback.function, what: "the transform")
                transform = ScriptTransform(callback: t.callback, workers: WorkerSessions(copy, of: a.interpreter))
                note = "the transform \(t.callback.name) runs on \(workers) worker\(workers == 1 ? "" : "s")"
            } catch {
                note = (error as? ScriptError)?.message ?? "\(error)"
            }
        }
        return .host(
            LoaderBox(note: note, 
                try Loader(
                    try a.host("dataset", DatasetBox.self).dataset, batchSize: try a.int("batch", in: 1...(1 << 24)),
                    shuffle: try a.bool("shuffle"),
                    dropLast: try a.bool("drop_last"), transform: transform,
                    workers: workers,
                    seed: try a.seed(),
                    shard: try a.bool("shard") && DataParallel.active ? (MPI.rank, MPI.size) : (0, 1))))
    }
}

/// A dataset.
final class DatasetBox: HostObject, TypedHost {
    override var hostType: HostType { DatasetBox.type }
    let dataset: any Dataset
    init(_ dataset: any Dataset) { self.dataset = dataset }
    static let type: HostType = {
        let t = HostType("dataset", doc: "Labelled images: len(d), d[i] gives [image, label], d.classes.")
        t.property(DatasetBox.self, "classes") { o in list(o.dataset.classNames.map { .string($0) }) }
        t.length(DatasetBox.self) { o in o.dataset.count }
        t.index(DatasetBox.self) { o, k in
            let d = o.dataset
            let (im, label) = try d.item(try sequenceIndex(k, count: d.count, what: "dataset"))
            return list([box(try stack([im]).reshaped([im.channels, im.height, im.width])), .int(label)])
        }
        t.describe(DatasetBox.self) { o in "dataset of \(o.dataset.count) images, \(o.dataset.classNames.count) classes"
        }
        return t
    }()
}

/// A per-image transform (one step or a composition).
final class TransformBox: HostObject, TypedHost {
    override var hostType: HostType { TransformBox.type }
    let transform: any Transform
    let name: String
    init(_ transform: any Transform, _ name: String) {
        self.transform = transform
        self.name = name
    }
    static let type: HostType = {
        let t = HostType("transform", doc: "An image transform; walk(dataset, i, t) shows what it samples.")
        t.describe(TransformBox.self) { o in "transform \(o.name)" }
        return t
    }()
}

/// A batch from a loader.
final class BatchBox: HostObject, TypedHost {
    override var hostType: HostType { BatchBox.type }
    let batch: Batch
    init(_ batch: Batch) { self.batch = batch }
    static let type: HostType = {
        let t = HostType(
            "batch",
            doc: """
                A batch: .images (a tensor [N, C, H, W]), .labels (a list), .size, .indices (the images' places in \
                the dataset), .global_size (under MPI, the global batch this is one rank's share of).
                """)
        t.property(BatchBox.self, "images") { o in box(o.batch.images) }
        t.property(BatchBox.self, "labels") { o in ints(o.batch.labels) }
        t.property(BatchBox.self, "size") { o in .int(o.batch.labels.count) }
        t.property(BatchBox.self, "indices") { o in ints(o.batch.indices) }
        t.property(BatchBox.self, "global_size") { o in .int(o.batch.globalCount) }
        t.describe(BatchBox.self) { o in "batch of \(o.batch.labels.count), images \(o.batch.images.shape)" }
        return t
    }()
}

/// A loader: `for b in batches` runs one epoch; next(batches) steps through epochs by hand.
final class LoaderBox: HostObject, TypedHost {
    override var hostType: HostType { LoaderBox.type }
    let loader: Loader
    /// Where a transform written in the language runs, and why (nil: no such transform).
    let note: String?
    /// The epoch that next() is stepping through.
    private var stepping: BatchIterator?
    init(note: String? = nil, _ loader: Loader) {
        self.loader = loader
        self.note = note
    }

    /// For undo: the epoch, and whether next() was between epochs (an iterator cannot be rewound,
    /// so a snapshot taken mid-epoch leaves next()'s position as it is).
    var position: (epoch: Int, betweenEpochs: Bool) { (loader.epoch, stepping == nil) }
    func restore(_ p: (epoch: Int, betweenEpochs: Bool)) {
        loader.epoch = p.epoch
        if p.betweenEpochs { stepping = nil }
    }

    /// The next batch of the epoch next() is in, starting a new epoch after the last.
    func next() throws -> Batch {
        if let it = stepping, let b = try it.nextBatch() { return b }
        let it = try loader.epochBatches()
        stepping = it
        guard let b = try it.nextBatch() else {
            throw ScriptError(
                "next(): the loader has no batches (an empty dataset, or drop_last with fewer images than a batch)")
        }
        return b
    }

    static let type: HostType = {
        let t = HostType(
            "loader",
            doc: """
                Batches of a dataset; `for batch in loader` runs one epoch, reshuffled each time; next(loader) steps; \
                .epoch counts the epochs drawn.
                """)
        t.length(LoaderBox.self) { o in o.loader.batchCount }
        t.property(LoaderBox.self, "dataset_size") { o in .int(o.loader.dataset.count) }
        t.property(LoaderBox.self, "batch_size") { o in .int(o.loader.batchSize) }
        t.property(LoaderBox.self, "global_batch") { o in .int(o.loader.globalBatch) }
        t.property(LoaderBox.self, "epoch") { o in .int(o.loader.epoch) }
        t.iterate(LoaderBox.self) { o in
            let it = try o.loader.epochBatches()
            return { try it.nextBatch().map { .host(BatchBox($0)) } }
        }
        t.next(LoaderBox.self) { o in .host(BatchBox(try o.next())) }
        t.describe(LoaderBox.self) { o in
            let l = o.loader
            let shard = l.shard.count > 1 ? " (rank \(l.shard.rank)'s share of global batches of \(l.globalBatch))" : ""
            return "loader: \(l.dataset.count) images in \(l.batchCount) batches of \(l.batchSize)\(shard)" + (o.note.map { "; \($0)" } ?? "")
        }
        return t
    }()
}

/// A mixed batch (mixup, CutMix): images, soft targets and λ; also indexable as [images, targets, λ].
final class MixedBox: HostObject, TypedHost {
    override var hostType: HostType { MixedBox.type }
    let mixed: MixedBatch
    init(_ mixed: MixedBatch) { self.mixed = mixed }
    static let type: HostType = {
        let t = HostType(
            "mixed batch",
            doc: """
                mixup's or CutMix's batch: .images, .targets (soft rows [N, K]), .lambda, and .partners (image i was \
                mixed with image partners[i] of the batch); m[0], m[1], m[2] are the first three.
                """)
        t.property(MixedBox.self, "images") { o in box(o.mixed.images) }
        t.property(MixedBox.self, "targets") { o in box(o.mixed.targets) }
        t.property(MixedBox.self, "lambda") { o in .float(o.mixed.lambda) }
        t.property(MixedBox.self, "size") { o in .int(o.mixed.images.shape.first ?? 0) }
        t.property(MixedBox.self, "partners") { o in ints(o.mixed.permutation) }
        t.index(MixedBox.self) { o, k in
            switch try sequenceIndex(k, count: 3, what: "mixed batch") {
            case 0: return box(o.mixed.images)
            case 1: return box(o.mixed.targets)
            default: return .float(o.mixed.lambda)
            }
        }
        t.length(MixedBox.self) { _ in 3 }
        t.describe(MixedBox.self) { o in "mixed batch of \(o.mixed.images.shape.first ?? 0), λ = \(o.mixed.lambda)" }
        return t
    }()
}
