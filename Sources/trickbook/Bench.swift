import ArgumentParser
import Foundation
import TrickbookAssets
import TrickbookBindings
import TrickbookData
import TrickbookModels
import TrickbookMPI
import TrickbookScript
import TrickbookTensor
import TrickbookTraining

/// `trickbook bench …`: speed measurements. Build with `-c release` before quoting numbers.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the engine's speed (use a release build).",
        subcommands: [GemmBench.self, ConvBench.self, ScriptBench.self, TrainBench.self, DataBench.self, LoopBench.self, StepBench.self, TransformBench.self])
}

/// Runs `body` until `seconds` have passed (at least `minRuns` times) after one warm-up; returns
/// the median time per run.
func measure(seconds: Double = 1.0, minRuns: Int = 3, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = []
    let start = Date()
    while times.count < minRuns || Date().timeIntervalSince(start) < seconds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    return times.sorted()[times.count / 2]
}

func header() {
    let s = BLAS.status
    print("BLAS: \(s.core) (\(s.how)); threads: \(s.threads)")
}

struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm", abstract: "sgemm GFLOP/s for square matrices.")
    @Option(help: "Matrix sizes.") var sizes: [Int] = [256, 512, 1024, 2048]

    func run() throws {
        header()
        for n in sizes {
            let gflops = try sgemmGFLOPs(m: n, n: n, k: n)
            print(String(format: "sgemm %5d x %5d x %5d  %7.1f GFLOP/s", n, n, n, gflops))
        }
    }
}

func sgemmGFLOPs(m: Int, n: Int, k: Int, seconds: Double = 1) throws -> Double {
    let a = try Tensor.rand([m, k]), b = try Tensor.rand([k, n])
    let t = try measure(seconds: seconds) { _ = try a.matmul(b) }
    return 2 * Double(m * n * k) / t / 1e9
}

struct ConvBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conv", abstract: "conv2d forward and forward+backward GFLOP/s on ResNet layer shapes.")
    @Option(help: "Which shapes: resnet20, resnet50 or all.") var model: String = "all"
    @Option(help: "Only layers whose name contains this text.") var layer: String?
    @Option(help: "fp32, or bf16 (oneDNN's BF16 convolutions, where the CPU has them).") var precision: String = "fp32"

    /// One distinct conv shape and how many times the network has it. `input` says whether the
    /// backward needs dx (the stem's input is the image: training never asks for its gradient).
    struct Layer {
        let name: String
        let times, batch, cin, size, cout, k, stride: Int
        var input = true
    }

    /// `times` convs of `cin` → `cout` channels, k×k at `stride`, on `size`×`size` maps.
    static func conv(_ times: Int, _ cin: Int, _ size: Int, _ cout: Int, _ k: Int, _ stride: Int, batch: Int, input: Bool = true) -> Layer {
        Layer(name: "\(cin)→\(cout) \(k)x\(k)\(stride == 2 ? " /2" : "") @\(size)", times: times, batch: batch, cin: cin, size: size, cout: cout, k: k, stride: stride, input: input)
    }
    static func r20(_ t: Int, _ c: Int, _ s: Int, _ o: Int, _ k: Int, _ st: Int, input: Bool = true) -> Layer { conv(t, c, s, o, k, st, batch: 128, input: input) }
    static func r50(_ t: Int, _ c: Int, _ s: Int, _ o: Int, _ k: Int, _ st: Int, input: Bool = true) -> Layer { conv(t, c, s, o, k, st, batch: 16, input: input) }

    /// Every conv of ResNet-20 on 28×28×1 (projection shortcuts).
    static let resnet20: [Layer] = [
        r20(1, 1, 28, 16, 3, 1, input: false), r20(6, 16, 28, 16, 3, 1),
        r20(1, 16, 28, 32, 3, 2), r20(1, 16, 28, 32, 1, 2), r20(5, 32, 14, 32, 3, 1),
        r20(1, 32, 14, 64, 3, 2), r20(1, 32, 14, 64, 1, 2), r20(5, 64, 7, 64, 3, 1),
    ]
    /// Every conv of ResNet-50 (B: stride on the 3×3) at 224×224.
    static let resnet50: [Layer] = [
        r50(1, 3, 224, 64, 7, 2, input: false),
        r50(1, 64, 56, 64, 1, 1), r50(2, 256, 56, 64, 1, 1), r50(3, 64, 56, 64, 3, 1), r50(4, 64, 56, 256, 1, 1),
        r50(1, 256, 56, 128, 1, 1), r50(1, 128, 56, 128, 3, 2), r50(1, 256, 56, 512, 1, 2),
        r50(3, 512, 28, 128, 1, 1), r50(3, 128, 28, 128, 3, 1), r50(4, 128, 28, 512, 1, 1),
        r50(1, 512, 28, 256, 1, 1), r50(1, 256, 28, 256, 3, 2), r50(1, 512, 28, 1024, 1, 2),
        r50(5, 1024, 14, 256, 1, 1), r50(5, 256, 14, 256, 3, 1), r50(6, 256, 14, 1024, 1, 1),
        r50(1, 1024, 14, 512, 1, 1), r50(1, 512, 14, 512, 3, 2), r50(1, 1024, 14, 2048, 1, 2),
        r50(2, 2048, 7, 512, 1, 1), r50(2, 512, 7, 512, 3, 1), r50(3, 512, 7, 2048, 1, 1),
    ]

    func run() throws {
        let sets: [(String, [Layer])]
        switch model {
        case "resnet20": sets = [("ResNet-20, batch 128, 28x28", Self.resnet20)]
        case "resnet50": sets = [("ResNet-50, batch 16, 224x224", Self.resnet50)]
        case "all": sets = [("ResNet-20, batch 128, 28x28", Self.resnet20), ("ResNet-50, batch 16, 224x224", Self.resnet50)]
        default: throw ValidationError("--model must be resnet20, resnet50 or all, got \(model)")
        }
        header()
        // This machine's speed drifts between runs: take the better of two sizes as the reference.
        let reference = max(try sgemmGFLOPs(m: 1024, n: 1024, k: 1024, seconds: 2), try sgemmGFLOPs(m: 2048, n: 2048, k: 2048, seconds: 2))
        print(String(format: "reference sgemm (best of 1024^3 and 2048^3): %.1f GFLOP/s", reference))
        let peak = Peak.here
        print(peak.description)
        guard precision == "fp32" || precision == "bf16" else { throw ValidationError("--precision must be fp32 or bf16, got \(precision)") }
        let low = precision == "bf16"
        if low && !OneDNN.bf16InHardware { throw ValidationError("--precision bf16 needs oneDNN and a CPU with AVX512_BF16 or AMX (see doctor)") }
        let ceiling = low ? (peak.bfloat16 ?? peak.fp32) : peak.fp32
        print("convolutions: \(OneDNN.enabled ? "oneDNN (\(OneDNN.isa))" : "trickbook's own kernels"), \(precision)\n")
        for (title, layers) in sets {
            print(title)
            print("  layer (× times in the net)     fwd GFLOP/s  fwd+bwd GFLOP/s  fwd+bwd / sgemm  / peak")
            var flopsTotal = 0.0, timeTotal = 0.0
            for l in layers where layer.map({ l.name.contains($0) }) ?? true {
                let x = try Tensor.randn([l.batch, l.cin, l.size, l.size])
                x.requiresGrad = l.input
                let w = try Tensor.randn([l.cout, l.cin, l.k, l.k])
                w.requiresGrad = true
                let pad = l.k / 2
                let forward = try OneDNN.$lowPrecision.withValue(low) {
                    try measure(seconds: 1) { _ = try withNoGrad { try x.conv2d(weight: w, stride: (l.stride, l.stride), padding: (pad, pad)) } }
                }
                var macs = 0
                let both = try measure(seconds: 1.5) {
                    let y = try OneDNN.$lowPrecision.withValue(low) { try x.conv2d(weight: w, stride: (l.stride, l.stride), padding: (pad, pad)) }
                    macs = l.batch * l.cout * y.shape[2] * y.shape[3] * l.cin * l.k * l.k
                    try y.backward(Tensor.full(y.shape, value: 1))
                    x.zeroGrad(); w.zeroGrad()
                }
                let flops = Double(macs) * (l.input ? 6 : 4)  // forward 2, dW 2, dx 2
                let fwd = 2 * Double(macs) / forward / 1e9, fb = flops / both / 1e9
                flopsTotal += Double(l.times) * flops; timeTotal += Double(l.times) * both
                print("  " + "\(l.name) ×\(l.times)".padding(toLength: 30, withPad: " ", startingAt: 0)
                      + String(format: " %11.1f  %15.1f  %14.0f%%  %5.0f%%", fwd, fb, 100 * fb / reference, 100 * fb / ceiling))
            }
            let overall = flopsTotal / timeTotal / 1e9
            print(String(format: "  whole network (each layer × its times) %17.1f  %14.0f%%  %5.0f%%\n", overall,
                         100 * overall / reference, 100 * overall / ceiling))
        }
    }
}

/// The interpreter's speed on two classic micro-benchmarks (CPython 3.11 here: 312 ms and 1.46 s;
/// Lua 5.4: 74 ms and 90 ms).
/// Training and evaluation images/s of a whole ResNet: forward, cross-entropy, backward and a plain
/// SGD update per training step. PyTorch 2.15 here: ResNet-20 trains at 380–490 images/s and
/// evaluates at 1,650–1,950; ResNet-50 trains at about 3 and evaluates at 14–18.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Training and evaluation images/s and peak memory of a ResNet.")

    @Option(help: "resnet20 (28x28x1, 10 classes) or resnet50 (224x224x3, 1000 classes).") var model: String = "resnet20"
    @Option(help: "Batch size.") var batch: Int = 128
    @Option(help: "Variant a, b, c or d.") var variant: String = "b"
    @Option(help: "Seconds to measure each of training and evaluation.") var seconds: Double = 10
    @Option(help: "fp32, fp16 (simulated by rounding) or bf16 (in hardware where the CPU has it: see doctor).") var precision: String = "fp32"
    @Option(help: "Time this many training steps instead of --seconds (under mpirun: 20 unless given).") var steps: Int = 0

    func run() throws {
        // Under mpirun every rank trains on a batch of its own and the gradients are averaged:
        // images/s are the global batch's, and rank 0 alone prints.
        try MPI.start()
        if MPI.size > 1, MPI.rank != 0 { _ = freopen("/dev/null", "w", stdout) }
        defer { MPI.finish() }
        var config: ResNetConfig
        let input: [Int]
        switch model {
        case "resnet20":
            config = ResNetConfig(depth: 20); config.classes = 10; config.inChannels = 1; input = [1, 28, 28]
        case "resnet50":
            config = ResNetConfig(depth: 50); input = [3, 224, 224]
        default:
            throw ValidationError("--model must be resnet20 or resnet50, got \(model)")
        }
        guard let v = ResNetVariant(rawValue: variant) else { throw ValidationError("--variant must be a, b, c or d, got \(variant)") }
        config.variant = v
        let net = try ResNet(config)
        header()
        let how = precision == "bf16" ? (OneDNN.bf16InHardware ? " (convolutions in BF16 on \(OneDNN.isa))" : " (simulated)") : ""
        let convs = OneDNN.enabled ? "oneDNN" : "trickbook's own kernels"
        print("\(net.typeName), batch \(batch), input \(input), \(net.parameterCount) parameters, \(precision)\(how), convolutions: \(convs)")
        let g = Generator(seed: 1 + UInt64(MPI.rank))
        let x = try Tensor.randn([batch] + input, generator: g)
        let labels = try Tensor.randint(0, config.classes, shape: [batch], generator: g)
        let scaler: LossScaler?
        switch precision {
        case "fp32": scaler = nil
        case "fp16": scaler = LossScaler(format: .float16)
        case "bf16": scaler = LossScaler(format: .bfloat16)
        default: throw ValidationError("--precision must be fp32, fp16 or bf16, got \(precision)")
        }
        let trainer = Trainer(model: net, optimizer: try SGD(net, lr: 0.01), schedule: ConstantLR(0.01), lowPrecision: scaler)
        try trainer.distribute()
        let targets = Targets.labels(labels.scalars.map { Int($0) })
        if steps > 0 || DataParallel.active {
            try timeSteps(trainer, x, targets, steps: steps > 0 ? steps : 20)
            return
        }
        let train = try measure(seconds: seconds, minRuns: 3) { _ = try trainer.trainStep(x, targets) }
        net.eval()
        let evaluate = try measure(seconds: seconds, minRuns: 3) {
            if let format = scaler?.format { _ = try lowPrecisionLogits(net, x, format: format) } else { _ = try withNoGrad { try net(x) } }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(String(format: "train  %8.1f images/s  (%.3f s a step)", Double(batch) / train, train))
        print(String(format: "eval   %8.1f images/s  (%.3f s a batch)", Double(batch) / evaluate, evaluate))
        print(String(format: "peak memory %.2f GiB", Double(usage.ru_maxrss) / 1024 / 1024))
    }

    /// A fixed number of steps (every rank must make as many), after two to warm up: images/s
    /// of the global batch, and the time each step spent communicating (in MPI's calls, waiting
    /// for the other ranks included).
    func timeSteps(_ trainer: Trainer, _ x: Tensor, _ targets: Targets, steps: Int) throws {
        for _ in 0..<2 { _ = try trainer.trainStep(x, targets) }
        try MPI.barrier()
        let c0 = trainer.communicationSeconds, t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { _ = try trainer.trainStep(x, targets) }
        try MPI.barrier()
        let step = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(steps)
        let comm = (trainer.communicationSeconds - c0) / Double(steps)
        let ranks = MPI.size, global = batch * ranks
        print("\(ranks) process\(ranks == 1 ? "" : "es") × \(Threads.count) thread\(Threads.count == 1 ? "" : "s"), batch \(batch) each (global \(global)), \(steps) steps, gradients in \(trainer.bucketCount) bucket\(trainer.bucketCount == 1 ? "" : "s")")
        print(String(format: "train  %8.1f images/s  (%.3f s a step)", Double(global) / step, step))
        if ranks > 1 {
            print(String(format: "communication %.2f ms a step (%.1f%%), waiting for the other ranks included", comm * 1000, 100 * comm / step))
        }
    }
}

/// Images/s of the data pipelines with 1 and 2 workers: Fashion-MNIST's training pipeline (pad
/// and crop, flip, normalize) and the paper's full 224×224 RGB pipeline on 300×400 images.
struct DataBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Data pipeline images/s with 1 and 2 workers.")

    func run() throws {
        let fashion = try FashionMNIST.dataset("train", limit: 20000)
        let fashionPipe = Compose([PadCrop(28, padding: 2), HorizontalFlip(), try Normalize(mean: [72.94], std: [90.02])])
        let g = Generator(seed: 1)
        let rgbBytes = (0..<(64 * 3 * 300 * 400)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let rgb = MemoryDataset(channels: 3, height: 300, width: 400, bytes: rgbBytes, labels: [Int](repeating: 0, count: 64), classNames: ["x"])
        let rgbPipe = try paperTrainPipeline(size: 224)
        for (name, data, pipe, batch, epochs) in [("Fashion-MNIST 28x28x1 (pad-crop, flip, normalize)", fashion as any Dataset, fashionPipe as any Transform, 128, 1),
                                                  ("RGB 300x400 → 224x224 (paper's train pipeline)", rgb as any Dataset, rgbPipe as any Transform, 16, 2)] {
            for workers in [1, 2] {
                let loader = try Loader(data, batchSize: batch, shuffle: true, transform: pipe, workers: workers, prefetch: 8, seed: 3)
                let start = DispatchTime.now().uptimeNanoseconds
                var n = 0
                for _ in 0..<epochs {
                    let it = try loader.epochBatches()
                    while let b = try it.nextBatch() { n += b.labels.count }
                }
                let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                print(String(format: "%@, %d worker%@: %9.0f images/s", name, workers, workers == 1 ? "" : "s", Double(n) / s))
            }
        }
    }
}

/// What the script-driven training loop (stdlib/train.tb's train_epoch) costs on top of the
/// training step itself: the same loop with `train_step` replaced by a stub gives the
/// interpreter's cost per iteration, compared with a real ResNet-20 step measured in Swift.
struct LoopBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loop", abstract: "The script training loop's overhead against a ResNet-20 step.")

    func run() throws {
        header()
        // A real step, driven from Swift.
        var config = ResNetConfig(depth: 20)
        config.variant = .d; config.classes = 10; config.inChannels = 1
        let net = try ResNet(config)
        let g = Generator(seed: 1)
        let x = try Tensor.randn([128, 1, 28, 28], generator: g)
        let labels = (0..<128).map { _ in g.int(below: 10) }
        let trainer = Trainer(model: net, optimizer: try SGD(net, lr: 0.05), schedule: ConstantLR(0.05), loss: Loss(smoothing: 0.1))
        let step = try measure(seconds: 5, minRuns: 5) { _ = try trainer.trainStep(x, .labels(labels)) }
        // The stdlib loop with a stub step.
        let interp = Interpreter(searchPath: stdlibPaths())
        interp.builtinModules = Assets.stdlib
        interp.output = { _ in }
        Bindings.register(into: interp)
        interp.register(try Builtin("train_step(model, batch, opt, loss, targets = nil)", doc: "A stub that does no work.") { _ in
            let m = MapRef()
            try m.set(.string("loss"), .float(0.5)); try m.set(.string("size"), .int(128)); try m.set(.string("lr"), .float(0.05))
            try m.set(.string("correct"), .int(100))
            return .map(m)
        })
        let iterations = 20000
        try interp.run("""
        import "train"
        let model = resnet(20, variant: "d", in_channels: 1, classes: 10)
        let opt = sgd(model, 0.05)
        let loss = cross_entropy(smoothing: 0.1)
        var batches = []
        for i in range(\(iterations)) { batches.append(i) }
        """, name: "setup")
        let loop = try measure(seconds: 3, minRuns: 3) { try interp.run("train_epoch(model, batches, opt, loss)", name: "loop") }
        let perIteration = loop / Double(iterations)
        print(String(format: "ResNet-20D training step (batch 128), driven from Swift: %.1f ms", step * 1000))
        print(String(format: "stdlib train_epoch per iteration (stub step, progress bar included): %.2f µs", perIteration * 1e6))
        print(String(format: "the script loop costs %.4f%% of a training step", 100 * perIteration / step))
    }
}
