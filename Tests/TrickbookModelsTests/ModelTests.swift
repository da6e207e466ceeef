import Foundation
import Testing
@testable import TrickbookModels
import TrickbookTensor

@Suite struct ModelTests {
    static let shapes: [(Int, String)] = [18, 34, 50, 101, 152].flatMap { d in ["a", "b", "c", "d"].map { (d, $0) } }
        + [20, 32, 44, 56, 110].flatMap { d in ["a", "d"].map { (d, $0) } }

    /// Every depth and variant maps a batch to [N, classes], in training and in evaluation.
    @Test(arguments: shapes)
    func outputShapes(depth: Int, variant: String) throws {
        let small = ResNetConfig.smallDepths.contains(depth)
        let m = try resnet(depth, variant, classes: 7, inChannels: small ? 1 : 3)
        let x = try Tensor.randn([2, small ? 1 : 3, small ? 28 : 64, small ? 28 : 64], generator: Generator(seed: 1))
        #expect(try withNoGrad { try m(x) }.shape == [2, 7])
        m.eval()
        #expect(try withNoGrad { try m(x) }.shape == [2, 7])
    }

    /// With zero-gamma the last BN of every residual block starts at γ = 0, so a block without a
    /// projection returns relu(x) at init: basic and bottleneck alike.
    @Test(arguments: [(20, "layer1.1"), (50, "layer1.1"), (18, "layer2.1")])
    func zeroGammaBlockIsReluOfItsInput(depth: Int, blockName: String) throws {
        let m = try resnet(depth, "d", zeroGamma: true)
        let block = try #require(m.namedModules().first { $0.0 == blockName }?.1)
        let channels = (block.namedParameters().first?.1.shape[1]) ?? 1
        let x = try Tensor.randn([2, channels, 8, 8], generator: Generator(seed: 2))
        for training in [true, false] {
            block.train(training)
            #expect(try withNoGrad { try block(x) }.scalars == x.relu().scalars)
        }
        let zeroed = m.zeroGammaLayers
        let blocks = m.namedModules().filter { $0.1 is ResidualBlock }.count
        #expect(zeroed.count == blocks)
        #expect(zeroed.allSatisfy { $0.hasSuffix(depth >= 50 ? "bn3" : "bn2") })
        #expect(try resnet(depth, "d").zeroGammaLayers.isEmpty)
    }

    /// A ResNet runs its batch norms and residual sums fused with the ReLUs that follow them:
    /// outputs, running statistics and every gradient are bitwise those of the layers one by one.
    @Test(arguments: [(20, "b", 28, 1), (50, "d", 32, 3)])
    func fusedBlocksAreTheLayers(depth: Int, variant: String, size: Int, channels: Int) throws {
        let x = try Tensor.randn([4, channels, size, size], generator: Generator(seed: 3))
        func run(fused: Bool) throws -> [[Float]] {
            let m = try resnet(depth, variant, classes: 10, inChannels: channels, zeroGamma: false)
            return try Module.$fuses.withValue(fused) {
                let y = try m(x)
                try (y * Tensor.randn(y.shape, generator: Generator(seed: 4))).sum().backward()
                return [y.scalars] + m.namedBuffers().map { $0.1.scalars } + m.namedParameters().map { $0.1.grad?.scalars ?? [] }
            }
        }
        let fused = try run(fused: true), separate = try run(fused: false)
        #expect(fused.count == separate.count)
        for (i, (f, s)) in zip(fused, separate).enumerated() { #expect(f == s, "ResNet-\(depth): tensor \(i) differs") }
    }

    /// In evaluation without gradients each convolution runs with the batch norm after it folded
    /// in (and its ReLU as a post-op): the same outputs as the layers one by one, up to the rounding
    /// of the folded weights. Training, or evaluation with gradients, runs the layers as they are.
    @Test(arguments: [(20, "b", 28, 1), (50, "b", 32, 3)])
    func foldedEvaluationIsTheLayers(depth: Int, variant: String, size: Int, channels: Int) throws {
        try #require(OneDNN.available, "oneDNN is not installed: \(OneDNN.loadError)")
        let m = try resnet(depth, variant, classes: 10, inChannels: channels, zeroGamma: false)
        let x = try Tensor.randn([4, channels, size, size], generator: Generator(seed: 5))
        _ = try m(x)  // one training step's worth of running statistics, so that the fold is not trivial
        m.eval()
        let folded = try withNoGrad { try m(x) }
        let layers = try Module.$fuses.withValue(false) { try withNoGrad { try m(x) } }
        let recorded = try m(x)  // with gradients: not folded
        var worst: Float = 0
        for (a, b) in zip(folded.scalars, layers.scalars) { worst = Swift.max(worst, abs(a - b) / Swift.max(1, abs(b))) }
        #expect(worst < 1e-4, "ResNet-\(depth): folded evaluation differs by \(worst)")
        #expect(folded.scalars != layers.scalars, "the fold did not run")
        #expect(recorded.scalars == layers.scalars)
    }

    /// Xavier uniform: every conv and linear weight lies within ±√(6 / (fan_in + fan_out)) and
    /// has about the variance of that uniform (a² / 3); BN starts at γ = 1, β = 0; biases at 0.
    @Test func xavierInitialization() throws {
        let m = try resnet(20, "a", classes: 10)
        for (name, mod) in m.namedModules() {
            if let c = mod as? Conv2d {
                let fanIn = c.inChannels * c.kernel * c.kernel, fanOut = c.outChannels * c.kernel * c.kernel
                let a = (6 / Float(fanIn + fanOut)).squareRoot()
                let w = c.weight.scalars
                #expect(w.allSatisfy { abs($0) <= a }, "\(name)")
                if w.count > 2000 {
                    let variance = w.reduce(0) { $0 + $1 * $1 } / Float(w.count)
                    #expect(abs(variance / (a * a / 3) - 1) < 0.1, "\(name) variance \(variance)")
                }
            }
            if let bn = mod as? BatchNorm2d {
                #expect(bn.weight.scalars.allSatisfy { $0 == 1 } && bn.bias.scalars.allSatisfy { $0 == 0 })
            }
        }
        #expect(m.fc.bias?.scalars.allSatisfy { $0 == 0 } == true)
        var k = ResNetConfig(depth: 50)
        k.initializer = .kaiming
        let conv = try #require(try ResNet(k).namedModules().first { $0.0 == "layer3.0.conv2" }?.1 as? Conv2d)
        let w = conv.weight.scalars, std = (w.reduce(0) { $0 + $1 * $1 } / Float(w.count)).squareRoot()
        #expect(abs(std / (2 / Float(256 * 9)).squareRoot() - 1) < 0.05)  // std = √(2 / fan_out)
        // The same seed gives the same weights.
        #expect(try resnet(20, "a").fc.weight.scalars == resnet(20, "a").fc.weight.scalars)
    }

    @Test func optionsSEResNeXtSwish() throws {
        var se = ResNetConfig(depth: 50)
        se.squeezeExcite = true
        #expect(try ResNet(se).parameterCount == 28_088_024)  // timm's seresnet50
        var x = ResNetConfig(depth: 50)
        x.groups = 32
        x.widthPerGroup = 4
        #expect(try ResNet(x).parameterCount == 25_028_904)  // torchvision's resnext50_32x4d
        var s = ResNetConfig(depth: 20)
        s.activation = .swish
        s.classes = 10
        let m = try ResNet(s)
        #expect(m.namedModules().contains { $0.1 is Swish } && !m.namedModules().contains { $0.1 is ReLU })
    }

    @Test(arguments: [
        ({ var c = ResNetConfig(depth: 51); c.variant = .a; return c }(), "depth must be one of 18, 34, 50, 101, 152, 20, 32, 44, 56, 110, got 51"),
        ({ var c = ResNetConfig(depth: 50); c.classes = 0; return c }(), "must be positive"),
    ])
    func badSettings(config: ResNetConfig, message: String) {
        #expect { _ = try ResNet(config) } throws: { "\($0)".contains(message) }
    }

    @Test func wrongInputIsAnError() throws {
        let m = try resnet(20, "a", inChannels: 1)
        #expect { _ = try m(try Tensor.zeros([2, 3, 28, 28])) } throws: { "\($0)".contains("input must be [N, 1, H, W]") }
    }
}

@Suite struct SummaryTests {
    @Test func tableAndTotals() throws {
        let s = try resnet(20, "a", classes: 10, inChannels: 1).summary(input: [1, 28, 28])
        #expect(s.parameters == 272_186)
        #expect(s.rows.first?.name == "conv1" && s.rows.first?.outputShape == [16, 28, 28])
        #expect(s.rows.last?.name == "fc" && s.rows.last?.macs == 640)
        let stem = 16 * 28 * 28 * 9
        #expect(s.rows.first?.macs == stem)
        let table = s.table()
        #expect(table.contains("272,186") && table.contains("layer3.2.conv2"))
    }

    @Test func diffShowsWhatTheTweaksChanged() throws {
        let a = try resnet(50, "a").summary(input: [3, 224, 224]), b = try resnet(50, "b").summary(input: [3, 224, 224])
        let d = try resnet(50, "d").summary(input: [3, 224, 224])
        let ab = ModelSummary.diff(a, b)
        #expect(ab.contains("~ layer2.0.conv1") && ab.contains("~ layer2.0.conv2"))
        #expect(ab.contains("MACs 3,857,973,248 → 4,089,184,256 (+231,211,008)"))
        let ad = ModelSummary.diff(a, d)
        #expect(ad.contains("+ conv1.0") && ad.contains("+ conv1.6") && ad.contains("- conv1 "))
        #expect(ad.contains("+ layer2.0.downsample.2") && ad.contains("(+19,232)"))
    }
}

@Suite struct CheckpointTests {
    func tmp(_ name: String) -> String { NSTemporaryDirectory() + "tb-\(UUID().uuidString)-\(name)" }

    @Test func roundTripWithPyTorchNames() throws {
        let a = try resnet(18, "d", classes: 10)
        // Give the BN buffers something other than their start values.
        a.train()
        _ = try withNoGrad { try a(try Tensor.randn([2, 3, 32, 32], generator: Generator(seed: 3))) }
        let path = tmp("r18.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try a.save(to: path)
        var cfg = ResNetConfig(depth: 18)
        cfg.variant = .d
        cfg.classes = 10
        cfg.seed = 99
        let b = try ResNet(cfg)
        let report = try b.load(from: path)
        #expect(report.missing.isEmpty && report.unexpected.isEmpty)
        for ((n1, t1), (n2, t2)) in zip(a.stateDict(), b.stateDict()) {
            #expect(n1 == n2 && t1.scalars == t2.scalars, "\(n1)")
        }
        let names = Set(try loadTensors(path).map(\.0))
        for key in ["conv1.0.weight", "conv1.1.running_mean", "conv1.3.weight", "conv1.4.weight", "conv1.6.weight", "bn1.num_batches_tracked",
                    "layer1.0.conv1.weight", "layer2.0.downsample.1.weight", "layer2.0.downsample.2.running_var", "fc.weight", "fc.bias"] {
            #expect(names.contains(key), "\(key)")
        }
        let plain = Set(try resnet(18, "b").stateDict().map(\.0))
        #expect(plain.contains("conv1.weight") && plain.contains("bn1.running_mean") && plain.contains("layer2.0.downsample.0.weight"))
        let entries = try SafeTensors.read(path)
        #expect(entries.first { $0.name == "bn1.num_batches_tracked" }?.dtype == .i64)
        #expect(entries.first { $0.name == "bn1.num_batches_tracked" }?.tensor.item == 1)
    }

    @Test func badFilesAreClearErrors() throws {
        let m = try resnet(20, "a", classes: 10)
        let path = tmp("ok.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try m.save(to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        func expectLoadError(_ data: Data, _ fragments: [String], into model: Module? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let p = tmp("bad.safetensors")
            defer { try? FileManager.default.removeItem(atPath: p) }
            try data.write(to: URL(fileURLWithPath: p))
            do {
                try (model ?? m).load(from: p)
                Issue.record("loaded a bad file", sourceLocation: sourceLocation)
            } catch {
                for f in fragments { #expect("\(error)".contains(f), "\(error)", sourceLocation: sourceLocation) }
            }
        }
        try expectLoadError(good.prefix(good.count - 100), ["tensor 'fc.bias'", "outside the"])  // truncated data
        try expectLoadError(good.prefix(5), ["too short"])
        var huge = good
        huge.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
        try expectLoadError(huge, ["header claims 1099511627776 bytes"])
        var notJSON = good
        notJSON[8] = 0x21
        try expectLoadError(notJSON, ["not a JSON object"])
        // A checkpoint of another model: wrong shapes name the tensor; other names are listed.
        try expectLoadError(good, ["tensor 'conv1.weight' has shape [16, 3, 3, 3] in the file but [16, 1, 3, 3] in the model"], into: try resnet(20, "a", classes: 10, inChannels: 1))
        try expectLoadError(good, ["tensor 'layer2.0.downsample.1.weight' has shape [32] in the file"], into: try resnet(20, "d", classes: 10))
        try expectLoadError(good, ["missing", "conv1.0.weight", "unexpected", "conv1.weight"], into: try resnet(20, "c", classes: 10))
        let report = try resnet(20, "c", classes: 10).load(from: path, strict: false)
        #expect(report.missing.contains("conv1.0.weight") && report.unexpected.contains("conv1.weight"))
    }

    @Test func plainNamedTensors() throws {
        let path = tmp("t.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try saveTensors([("a", try Tensor([1, 2, 3], shape: [3])), ("b.c", try Tensor.ones([2, 2]))], to: path)
        let t = try loadTensors(path)
        #expect(t.map(\.0) == ["a", "b.c"] && t[0].1.scalars == [1, 2, 3] && t[1].1.shape == [2, 2])
    }
}

@Suite struct TreeTests {
    /// A model prints as PyTorch prints it: the module tree, children indented; long trees end
    /// with a count of what is not shown.
    @Test func printsTheModuleTree() throws {
        let g = Generator(seed: 1)
        let m = Sequential([try Conv2d(1, 8, kernel: 3, padding: 1, generator: g), try BatchNorm2d(8), Sequential([ReLU(), Flatten()])])
        #expect(m.tree() == """
            Sequential(
              (0): Conv2d(1→8, 3x3)
              (1): BatchNorm2d(8)
              (2): Sequential(
                (0): ReLU
                (1): Flatten
              )
            )
            """)
        let big = try resnet(50, "d")
        let lines = big.tree(maxLines: 10).split(separator: "\n")
        #expect(lines.count == 11)
        let shown = lines.dropLast().filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix(")") }.count
        #expect(lines.last == "… \(big.namedModules().count - shown) more modules (summary() lists every layer)")
    }
}
