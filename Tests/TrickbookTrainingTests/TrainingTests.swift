import Foundation
import Testing
import TrickbookData
import TrickbookModels
import TrickbookTensor
@testable import TrickbookTraining

/// One trainable scalar w, for hand-worked optimizer steps.
final class Scalar: Module {
    let w: Tensor
    init(_ value: Float) throws {
        w = try Tensor([value], shape: [1])
        super.init()
        _ = param("w", w)
    }
}

func close(_ a: Float, _ b: Double, _ tol: Double = 1e-5) -> Bool { abs(Double(a) - b) <= tol * max(1, abs(b)) }

@Suite struct LossTests {
    /// z = [1, 2, 3], label 2. log-sum-exp = 3 + log(1 + e⁻¹ + e⁻²); log p = z − lse.
    static let z: [Double] = [1, 2, 3]
    static let lse = 3 + log(1 + exp(-1.0) + exp(-2.0))
    static let logp = z.map { $0 - lse }

    @Test func crossEntropyAndSmoothingByHand() throws {
        let logits = try Tensor([1, 2, 3], shape: [1, 3])
        #expect(close(try crossEntropy(logits, labels: [2]).item, -Self.logp[2]))
        // Paper form, ε = 0.1, K = 3: q = [0.05, 0.05, 0.9].
        let paper = -(0.05 * Self.logp[0] + 0.05 * Self.logp[1] + 0.9 * Self.logp[2])
        #expect(close(try crossEntropy(logits, labels: [2], smoothing: 0.1).item, paper))
        // PyTorch/timm form: q = 0.9·onehot + 0.1/3.
        let uniform = -((0.1 / 3) * (Self.logp[0] + Self.logp[1]) + (0.9 + 0.1 / 3) * Self.logp[2])
        #expect(close(try crossEntropy(logits, labels: [2], smoothing: 0.1, form: .uniform).item, uniform))
        // Soft targets (mixup) and smoothing compose: q = [0, 0.3, 0.7] then the paper form.
        let soft = try Tensor([0, 0.3, 0.7], shape: [1, 3])
        let q = [0 * 0.9 + 1 * 0.05, 0.3 * 0.9 + 0.7 * 0.05, 0.7 * 0.9 + 0.3 * 0.05]
        let expected = -zip(q, Self.logp).reduce(0) { $0 + $1.0 * $1.1 }
        #expect(close(try Loss(smoothing: 0.1)(logits, .soft(soft)).item, expected))
        #expect(throws: (any Error).self) { try crossEntropy(logits, labels: [3]) }
    }

    /// Gradient of the smoothed loss: softmax(z) − q, checked by central differences too.
    @Test func crossEntropyGradient() throws {
        let logits = try Tensor.randn([4, 5], generator: Generator(seed: 1))
        logits.requiresGrad = true
        let labels = [0, 3, 4, 1]
        try crossEntropy(logits, labels: labels, smoothing: 0.2).backward()
        let analytic = try #require(logits.grad).scalars
        var numeric: [Float] = []
        let eps: Float = 1e-2
        for i in 0..<logits.count {
            func f(_ d: Float) throws -> Float {
                let copy = logits.copy()
                copy.withUnsafeMutableBufferPointer { $0[i] += d }
                return try withNoGrad { try crossEntropy(copy, labels: labels, smoothing: 0.2).item }
            }
            numeric.append((try f(eps) - f(-eps)) / (2 * eps))
        }
        for (a, n) in zip(analytic, numeric) { #expect(abs(a - n) < 2e-3, "\(a) vs \(n)") }
        let p = try withNoGrad { try logits.softmax(axis: 1) }.scalars
        let q = try smoothTargets(oneHot(labels, classes: 5), epsilon: 0.2).scalars
        for i in analytic.indices { #expect(abs(analytic[i] - (p[i] - q[i]) / 4) < 1e-5) }
    }

    /// The paper (section 5.2): with smoothing, the optimal logits put the true class
    /// log((K − 1)(1 − ε)/ε) above every other. Gradient descent on free logits finds that gap.
    @Test(arguments: [(10, 0.1), (5, 0.2), (3, 0.3)])
    func labelSmoothingOptimumGap(classes: Int, epsilon: Double) throws {
        let z = try Tensor.zeros([1, classes])
        z.requiresGrad = true
        for _ in 0..<3000 {
            z.zeroGrad()
            try crossEntropy(z, labels: [0], smoothing: Float(epsilon)).backward()
            try withNoGrad { try z.update(subtracting: try #require(z.grad), scale: Float(classes)) }
        }
        let v = z.scalars
        let gap = Double(v[0]) - Double(v[1...].reduce(0, +)) / Double(classes - 1)
        #expect(abs(gap - log(Double(classes - 1) * (1 - epsilon) / epsilon)) < 1e-2, "gap \(gap)")
    }

    /// Distillation: hard CE + T²·KL(softmax(r/T) ‖ softmax(z/T)), which is T²·(CE − H(p)): the
    /// cross-entropy's gradient, and 0 for a student that matches its teacher; the teacher gets
    /// no gradient.
    @Test func distillationByHand() throws {
        let g = Generator(seed: 4)
        let teacher = try Linear(3, 4, generator: g), student = try Linear(3, 4, generator: Generator(seed: 5))
        let x = try Tensor.randn([2, 3], generator: g)
        let kd = try Distillation(teacher: teacher, temperature: 20)
        let loss = Loss(distillation: kd)
        let z = try student(x)
        let value = try loss(z, .labels([1, 3]), inputs: x)
        let r = try withNoGrad { try teacher(x) }
        // By hand, in Double: KL = Σ p (log p − log q) per row, averaged.
        func softmax(_ row: [Float]) -> [Double] {
            let m = Double(row.max() ?? 0), e = row.map { exp(Double($0) - m) }, s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        let zs = try (z / 20).detached().scalars, rs = try (r / 20).scalars
        var kl = 0.0
        for row in 0..<2 {
            let p = softmax(Array(rs[(row * 4)..<(row * 4 + 4)])), q = softmax(Array(zs[(row * 4)..<(row * 4 + 4)]))
            kl += zip(p, q).map { $0 * (log($0) - log($1)) }.reduce(0, +) / 2
        }
        let expected = Double(try crossEntropy(z, labels: [1, 3]).item) + 400 * kl
        #expect(abs(Double(value.item) - expected) < 1e-3, "\(value.item) against \(expected)")
        // The same gradient as the cross-entropy form, whose value is T²·H(p) more.
        try value.backward()
        let viaKL = try #require(student.weight.grad).scalars
        student.zeroGrad()
        let ce = try crossEntropy(try student(x), labels: [1, 3]) + (try softCrossEntropy(try student(x) / 20, try (r / 20).softmax(axis: 1))) * 400
        try ce.backward()
        let viaCE = try #require(student.weight.grad).scalars
        #expect(zip(viaKL, viaCE).allSatisfy { abs($0 - $1) < 1e-4 }, "\(viaKL) against \(viaCE)")
        #expect(teacher.weight.grad == nil && !teacher.training)
        // A student that matches its teacher has no soft loss.
        #expect(abs(try kd.softTerm(try teacher(x), inputs: x).item) < 1e-6)
    }
}

@Suite struct ScheduleTests {
    @Test func valuesAtChosenSteps() throws {
        let step = StepLR(0.1, milestones: [30, 60], gamma: 0.1)
        #expect(step.lr(at: 29) == 0.1 && close(step.lr(at: 30), 0.01) && close(step.lr(at: 60), 0.001))
        let cosine = CosineLR(0.4, total: 100)
        #expect(close(cosine.lr(at: 0), 0.4) && close(cosine.lr(at: 50), 0.2) && close(cosine.lr(at: 100), 0, 1e-6))
        #expect(close(cosine.lr(at: 25), 0.5 * (1 + cos(Double.pi / 4)) * 0.4))
        let warm = WarmupLR(CosineLR(0.4, total: 100), steps: 5)
        #expect(try close(warm.lr(at: 0), 0.08) && close(warm.lr(at: 4), 0.4) && close(warm.lr(at: 5), 0.4) && close(warm.lr(at: 55), 0.2))
        #expect(close(PolynomialLR(1, total: 10, power: 2).lr(at: 5), 0.25))
        #expect(try ConstantLR(0.3).values(3) == [0.3, 0.3, 0.3])
        #expect(linearScaledLR(0.1, batch: 1024) == 0.4 && linearScaledLR(batch: 128) == 0.05)
    }
}

@Suite struct OptimizerTests {
    /// w = 1, loss w², lr 0.1, μ 0.9, Nesterov (PyTorch's form), worked by hand:
    ///  1: g = 2, b = 2, d = g + μb = 3.8, w = 0.62
    ///  2: g = 1.24, b = 0.9·2 + 1.24 = 3.04, d = 1.24 + 2.736 = 3.976, w = 0.2224
    ///  3: g = 0.4448, b = 2.736 + 0.4448 = 3.1808, d = 0.4448 + 2.86272 = 3.30752, w = −0.108352
    @Test func threeNesterovSteps() throws {
        let m = try Scalar(1)
        let opt = try SGD(m, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0)
        var ws: [Float] = []
        for _ in 0..<3 {
            m.zeroGrad()
            try (m.w * m.w).sum().backward()
            try opt.step()
            ws.append(m.w.item)
        }
        #expect(close(ws[0], 0.62) && close(ws[1], 0.2224) && close(ws[2], -0.108352))
        // Weight decay adds λw to the gradient: one plain step of w = 2, g = 0, λ = 0.5, lr 0.1 → 1.9.
        let d = try Scalar(2)
        let plain = try SGD(d, lr: 0.1, momentum: 0, weightDecay: 0.5)
        d.w.grad = try Tensor.zeros([1])
        try plain.step()
        #expect(close(d.w.item, 1.9))
    }

    /// The one-pass step is bitwise the separate tensor ops it replaced, for every combination of
    /// momentum, Nesterov and weight decay, at the first step (no buffer yet) and a later one.
    @Test(arguments: [(0.9, true, 1e-4), (0.9, false, 1e-4), (0.9, true, 0.0), (0.0, false, 5e-4), (0.0, false, 0.0)])
    func oneStepIsTheSeparateOps(momentum: Float, nesterov: Bool, weightDecay: Float) throws {
        let gen = Generator(seed: 9)
        let p0 = try Tensor.randn([1000], generator: gen), g = try Tensor.randn([1000], generator: gen)
        let old = try Tensor.randn([1000], generator: gen)
        for buffer in [nil, old] {
            let fused = p0.copy()
            let b = try fused.sgdStep(grad: g, momentumBuffer: buffer, lr: 0.1, momentum: momentum,
                                      weightDecay: weightDecay, nesterov: nesterov)
            let p = p0.copy()
            var d = g
            if weightDecay != 0 { d = try d + p * weightDecay }
            var expectedBuffer: Tensor?
            if momentum != 0 {
                let nb = try buffer.map { try $0 * momentum + d } ?? d.copy()
                expectedBuffer = nb
                d = nesterov ? try d + nb * momentum : nb
            }
            try p.update(subtracting: d, scale: 0.1)
            #expect(fused.scalars == p.scalars)
            #expect(b?.scalars == expectedBuffer?.scalars)
        }
    }

    /// No bias decay on ResNet-50: exactly its 53 conv and 1 linear weights decay; BN's γ and β
    /// and the fc bias (107 tensors) do not.
    @Test func noBiasDecayGroupsOfResNet50() throws {
        let m = try ResNet(ResNetConfig(depth: 50))
        let opt = try SGD(m, lr: 0.1, weightDecay: 1e-4, noBiasDecay: true)
        let decay = opt.groups[0], none = opt.groups[1]
        #expect(decay.weightDecay == 1e-4 && none.weightDecay == 0)
        #expect(decay.parameters.count == 54 && none.parameters.count == 107)
        #expect(decay.parameters.allSatisfy { $0.1.rank == 4 || $0.0 == "fc.weight" })
        #expect(none.parameters.allSatisfy { $0.1.rank == 1 })
        #expect(decay.parameters.reduce(0) { $0 + $1.1.count } + none.parameters.reduce(0) { $0 + $1.1.count } == 25_557_032)
        #expect(opt.report().contains("no_decay: weight decay 0.0, 107 tensors"))
    }
}

@Suite struct TrainerTests {
    func tinyNet(seed: UInt64) throws -> ResNet {
        var c = ResNetConfig(depth: 20)
        c.width = 4
        c.classes = 3
        c.inChannels = 1
        c.seed = seed
        return try ResNet(c)
    }

    func batch(_ g: Generator) throws -> (Tensor, [Int]) {
        let labels = (0..<8).map { _ in g.int(below: 3) }
        var x = try Tensor.randn([8, 1, 8, 8], generator: g)
        x = try x + (try Tensor(labels.map { Float($0) }, shape: [8, 1, 1, 1]))
        return (x, labels)
    }

    func trainer(seed: UInt64) throws -> Trainer {
        let m = try tinyNet(seed: seed)
        let t = Trainer(model: m, optimizer: try SGD(m, lr: 0.1, weightDecay: 5e-4, noBiasDecay: true),
                        schedule: WarmupLR(CosineLR(0.1, total: 6), steps: 2), loss: Loss(smoothing: 0.1), clipNorm: 5, ema: EMA(m, decay: 0.9))
        t.generators["data"] = Generator(seed: 42)
        return t
    }

    /// Three steps, a checkpoint, three more in a fresh trainer: the same weights, to the bit, as
    /// six unbroken steps (model, momentum, averages, schedule position and data order all restored).
    @Test func resumedRunEqualsUnbroken() throws {
        let whole = try trainer(seed: 1)
        for _ in 0..<6 { let (x, y) = try batch(whole.generators["data"]!); _ = try whole.trainStep(x, .labels(y)) }
        let first = try trainer(seed: 1)
        for _ in 0..<3 { let (x, y) = try batch(first.generators["data"]!); _ = try first.trainStep(x, .labels(y)) }
        first.epoch = 1
        let path = NSTemporaryDirectory() + "resume-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try first.save(to: path)
        let second = try trainer(seed: 999)
        try second.resume(from: path)
        #expect(second.step == 3 && second.epoch == 1)
        for _ in 0..<3 { let (x, y) = try batch(second.generators["data"]!); _ = try second.trainStep(x, .labels(y)) }
        for ((n, a), (_, b)) in zip(whole.model.stateDict(), second.model.stateDict()) { #expect(a.scalars == b.scalars, "\(n)") }
        for (name, buf) in whole.optimizer.buffers { #expect(second.optimizer.buffers[name]?.scalars == buf.scalars, "\(name)") }
        for (a, b) in zip(whole.ema!.shadows, second.ema!.shadows) { #expect(a.2.scalars == b.2.scalars) }
    }

    /// Checkpoints edited by hand are refused, naming the file, before anything is restored:
    /// counters no run can reach, and momentum buffers that do not fit the parameters.
    @Test func craftedCheckpointsAreRefused() throws {
        let first = try trainer(seed: 1)
        let (x, y) = try batch(first.generators["data"]!)
        _ = try first.trainStep(x, .labels(y))
        let path = NSTemporaryDirectory() + "crafted-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try first.save(to: path)
        let entries = try SafeTensors.read(path).map { ($0.name, $0.tensor) }
        let meta = try SafeTensors.metadata(path)
        let bias = try #require(entries.first { $0.0.hasPrefix("optimizer.momentum.") && $0.0.hasSuffix("bias") })
        let one = try Tensor.full([1], value: 0), wrong = try Tensor.full([5, 2], value: 0)
        let stray = try Tensor.full([2], value: 0)
        let cases: [(String, [(String, Tensor)], [String: String])] = [
            ("step 9223372036854775807 or epoch 0 is not a count a run can reach",
             entries, meta.merging(["trickbook.step": "9223372036854775807"]) { $1 }),
            ("step 1 or epoch 9223372036854775807 is not a count",
             entries, meta.merging(["trickbook.epoch": "9223372036854775807"]) { $1 }),
            ("the momentum buffer of '\(bias.0.dropFirst(19))' is [1], the parameter is \(bias.1.shape)",
             entries.map { $0.0 == bias.0 ? ($0.0, one) : $0 }, meta),
            ("is [5, 2], the parameter is", entries.map { $0.0 == bias.0 ? ($0.0, wrong) : $0 }, meta),
            ("a momentum buffer for 'nowhere.weight', which this optimizer does not update",
             entries + [("optimizer.momentum.nowhere.weight", stray)], meta),
        ]
        for (message, tensors, metadata) in cases {
            try SafeTensors.write(tensors, to: path, metadata: metadata)
            let second = try trainer(seed: 2)
            let before = second.model.stateDict().map { $0.1.scalars }
            #expect { try second.resume(from: path) } throws: { "\($0)".contains(message) && "\($0)".contains(path) }
            #expect(second.step == 0 && second.model.stateDict().map { $0.1.scalars } == before, "\(message)")
        }
    }

    @Test func nonFiniteLossStopsWithTheStep() throws {
        let t = try trainer(seed: 1)
        let (x, y) = try batch(Generator(seed: 1))
        _ = try t.trainStep(x, .labels(y))
        let bad = try x * Float.infinity
        #expect { _ = try t.trainStep(bad, .labels(y)) } throws: { "\($0)".contains("at step 1") }
    }

    /// Low precision: an injected inf skips the step, halves the scale and leaves the weights;
    /// clean steps train in FP16 and BF16.
    @Test(arguments: [LowPrecisionFormat.float16, .bfloat16])
    func lossScalingSkipsAndTrains(format: LowPrecisionFormat) throws {
        let m = try tinyNet(seed: 3)
        let t = Trainer(model: m, optimizer: try SGD(m, lr: 0.05), schedule: ConstantLR(0.05), lowPrecision: LossScaler(format: format, initialScale: 1024, growthInterval: 3))
        let g = Generator(seed: 9)
        let (x, y) = try batch(g)
        let before = m.namedParameters().map { $0.1.scalars }
        let r = try t.trainStep(try x * Float.infinity, .labels(y))
        let scaler = try #require(t.scaler)
        #expect(r.skipped && scaler.skippedSteps == 1 && scaler.scale == 512)
        #expect(m.namedParameters().map { $0.1.scalars } == before)  // the skipped step changed nothing
        var losses: [Float] = []
        for _ in 0..<12 { let (bx, by) = try batch(g); losses.append(try t.trainStep(bx, .labels(by)).loss) }
        #expect(losses.suffix(4).reduce(0, +) < losses.prefix(4).reduce(0, +))
        #expect(scaler.scale == Float(512 * 16))  // doubled after every 3 clean steps
        #expect(scaler.underflowFraction < 0.5)
    }

    @Test func metricsByHand() throws {
        var m = Metrics(classes: 3)
        try m.add(logits: Tensor([3, 2, 1, 1, 3, 2, 1, 2, 3, 3, 1, 2], shape: [4, 3]), labels: [0, 2, 2, 1], loss: 0.5)
        #expect(m.top1 == 0.5 && m.top5 == 1 && m.meanLoss == 0.5)
        #expect(m.confusion == [[1, 0, 0], [1, 0, 0], [0, 1, 1]])
        #expect(m.perClassAccuracy[0] == 1 && m.perClassAccuracy[1] == 0 && m.perClassAccuracy[2] == 0.5)
    }
}

/// A small ResNet learns the real Fashion-MNIST far above chance (10%) in two short epochs.
@Suite struct FashionMNISTTests {
    @Test func datasetHasItsSizesAndClasses() throws {
        let (train, trainLabels) = try FashionMNIST.load("train")
        let (test, testLabels) = try FashionMNIST.load("test")
        #expect(train.shape == [60000, 1, 28, 28] && test.shape == [10000, 1, 28, 28])
        for c in 0..<10 {
            #expect(trainLabels.filter { $0 == c }.count == 6000 && testLabels.filter { $0 == c }.count == 1000)
        }
    }

    @Test func smallModelLearnsAFashionMNISTSubset() throws {
        let (images, labels) = try FashionMNIST.load("train", limit: 3000)
        let (testImages, testLabels) = try FashionMNIST.load("test", limit: 1000)
        func normalize(_ t: Tensor) throws -> Tensor { try t / 255 - 0.5 }
        var c = ResNetConfig(depth: 20)
        c.width = 8
        c.classes = 10
        c.inChannels = 1
        c.variant = .d
        c.zeroGamma = true
        let m = try ResNet(c)
        let steps = 2 * 3000 / 100
        let t = Trainer(model: m, optimizer: try SGD(m, lr: 0.2, weightDecay: 1e-4, noBiasDecay: true),
                        schedule: WarmupLR(CosineLR(0.2, total: steps - 5), steps: 5), loss: Loss(smoothing: 0.1))
        let order = Generator(seed: 7)
        for _ in 0..<2 {
            let perm = try permutationIndices(3000, generator: order)
            for b in 0..<30 {
                let idx = Array(perm[(b * 100)..<((b + 1) * 100)])
                _ = try t.trainStep(try normalize(images.indexSelect(axis: 0, indices: idx)), .labels(idx.map { labels[$0] }))
            }
        }
        m.eval()
        var metrics = Metrics(classes: 10)
        try withNoGrad { try metrics.add(logits: try m(try normalize(testImages)), labels: testLabels) }
        #expect(metrics.top1 > 0.6, "test accuracy \(metrics.top1)")
    }

    @Test func badFilesAreClearErrors() throws {
        let dir = NSTemporaryDirectory() + "idx-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect { _ = try FashionMNIST.load("train", directory: dir) } throws: { "\($0)".contains("apt-get install dataset-fashion-mnist") }
        let good = try Data(contentsOf: URL(fileURLWithPath: FashionMNIST.defaultDirectory + "/t10k-labels-idx1-ubyte.gz"))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: dir + "/trunc.gz"))
        #expect { _ = try IDX.read(dir + "/trunc.gz") } throws: { "\($0)".contains("trunc.gz") }
        try Data([0, 0, 9, 1, 0, 0, 0, 1, 5]).write(to: URL(fileURLWithPath: dir + "/magic"))
        #expect { _ = try IDX.read(dir + "/magic") } throws: { "\($0)".contains("wrong magic number") }
        try Data([0, 0, 8, 1, 0, 0, 0, 9, 5]).write(to: URL(fileURLWithPath: dir + "/short"))
        #expect { _ = try IDX.read(dir + "/short") } throws: { "\($0)".contains("header says [9]") }
    }
}

@Suite struct PreciseBNTests {
    /// Two batches through a 2-channel batch norm (N = 2, 1×1 planes): the running mean becomes
    /// the mean of the batch means, the running variance the mean of the unbiased batch variances.
    @Test func averagesTheBatchStatisticsByHand() throws {
        let bn = try BatchNorm2d(2)
        bn.eval()
        // x1: channel 0 holds [1, 3], channel 1 [0, 4]; x2: channel 0 [5, 5], channel 1 [2, 8].
        let x1 = try Tensor([1, 0, 3, 4], shape: [2, 2, 1, 1])
        let x2 = try Tensor([5, 2, 5, 8], shape: [2, 2, 1, 1])
        #expect(try preciseBatchNorm(bn, batches: [x1, x2]) == 2)
        // Means: channel 0 (2 + 5) / 2, channel 1 (2 + 5) / 2.
        #expect(bn.runningMean.scalars == [3.5, 3.5])
        // Unbiased variances: channel 0 (2 + 0) / 2; channel 1 (8 + 18) / 2.
        #expect(bn.runningVar.scalars == [1, 13])
        // The momentum and the evaluation mode are as they were.
        #expect(bn.momentum == 0.1 && !bn.training)
        #expect(throws: (any Error).self) { try preciseBatchNorm(bn, batches: []) }
    }
}

@Suite struct StepAccuracyTests {
    /// The running training accuracy: rows whose largest logit is the label, or for soft targets
    /// (mixup) the largest entry of the target row.
    @Test func correctCountsByHand() throws {
        let z = try Tensor([1, 3, 2, 5, 0, 0], shape: [2, 3])  // argmax: 1, 0
        #expect(try correctCount(z, .labels([1, 2])) == 1)
        #expect(try correctCount(z, .labels([1, 0])) == 2)
        let q = try Tensor([0, 0.3, 0.7, 0.6, 0.4, 0], shape: [2, 3])  // argmax: 2, 0
        #expect(try correctCount(z, .soft(q)) == 1)
    }
}
