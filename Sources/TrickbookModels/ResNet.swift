import TrickbookTensor

/// The ResNet family with the paper's tweaks (He et al. 2019, section 4):
/// - A, the original: a bottleneck's stride on its first 1×1 conv;
/// - B: the stride on the 3×3 conv;
/// - C: B with a stem of three 3×3 convs (32, 32, 64 channels, the first at stride 2);
/// - D: C plus a 2×2 stride-2 average pool before a stride-1 1×1 shortcut conv.
/// ImageNet depths 18, 34, 50, 101, 152; small-image depths 20, 32, 44, 56, 110 (3×3 stem at
/// stride 1, no max-pool, projection shortcuts).
/// The paper's ResNet variants (section 4.1, figure 2).
public enum ResNetVariant: String, Sendable, CaseIterable {
    case a, b, c, d
    /// C and D replace the 7×7 stem with three 3×3 convolutions.
    var deepStem: Bool { self == .c || self == .d }
}

/// The nonlinearity after each block and in the stem.
public enum Activation: String, Sendable, CaseIterable {
    case relu, swish
    public func module() -> Module { self == .swish ? Swish() : ReLU() }
}

public struct ResNetConfig: Sendable {
    public var depth: Int
    public var variant: ResNetVariant = .b
    public var classes: Int = 1000
    public var inChannels: Int = 3
    /// Channels of the first stage: 64 (ImageNet) or 16 (small images) by default.
    public var width: Int?
    public var zeroGamma = false
    public var squeezeExcite = false
    public var activation: Activation = .relu
    /// ResNeXt cardinality, with `widthPerGroup` channels per group in the bottleneck.
    public var groups = 1
    public var widthPerGroup = 64
    public var initializer: Initializer = .xavier
    public var seed: UInt64 = 0

    public init(depth: Int) { self.depth = depth }

    public static let imagenetDepths = [18, 34, 50, 101, 152]
    public static let smallDepths = [20, 32, 44, 56, 110]
    public var isSmall: Bool { ResNetConfig.smallDepths.contains(depth) }
}

/// A residual block's pieces shared by both kinds.
public class ResidualBlock: Module {
    var se: SqueezeExcite?
    var downsample: Module?
    let act: Module

    init(activation: Activation) { act = activation.module() }

    /// act(body + shortcut), the sum and a ReLU in one pass when nothing looks between them.
    func finish(_ body: Tensor, _ x: Tensor) throws -> Tensor {
        var y = body
        if let se { y = try se(y) }
        let shortcut = try downsample?(x) ?? x
        if act is ReLU, !Module.seesEveryLayer { return try y.addReLU(shortcut) }
        return try act(y + shortcut)
    }
}

public final class BasicBlock: ResidualBlock {
    static let expansion = 1
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d

    init(_ inPlanes: Int, _ planes: Int, stride: Int, downsample: Module?, config c: ResNetConfig, generator g: Generator) throws {
        conv1 = try Conv2d(inPlanes, planes, kernel: 3, stride: stride, padding: 1, initializer: c.initializer, generator: g)
        bn1 = try BatchNorm2d(planes)
        conv2 = try Conv2d(planes, planes, kernel: 3, padding: 1, initializer: c.initializer, generator: g)
        bn2 = try BatchNorm2d(planes, zeroGamma: c.zeroGamma)
        super.init(activation: c.activation)
        child("conv1", conv1); child("bn1", bn1); child("conv2", conv2); child("bn2", bn2)
        if c.squeezeExcite { se = child("se", try SqueezeExcite(planes, generator: g)) }
        if let downsample { self.downsample = child("downsample", downsample) }
        child("act", act)
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try finish(bn2.after(conv2, then: nil, bn1.after(conv1, then: act, x)), x)
    }
}

public final class Bottleneck: ResidualBlock {
    static let expansion = 4
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d, conv3: Conv2d, bn3: BatchNorm2d

    init(_ inPlanes: Int, _ planes: Int, stride: Int, downsample: Module?, config c: ResNetConfig, generator g: Generator) throws {
        let width = planes * c.widthPerGroup / 64 * c.groups
        let strideOnFirst = c.variant == .a  // ResNet-A strides in the first 1×1; B, C, D in the 3×3
        conv1 = try Conv2d(inPlanes, width, kernel: 1, stride: strideOnFirst ? stride : 1, initializer: c.initializer, generator: g)
        bn1 = try BatchNorm2d(width)
        conv2 = try Conv2d(width, width, kernel: 3, stride: strideOnFirst ? 1 : stride, padding: 1, groups: c.groups, initializer: c.initializer, generator: g)
        bn2 = try BatchNorm2d(width)
        conv3 = try Conv2d(width, planes * Bottleneck.expansion, kernel: 1, initializer: c.initializer, generator: g)
        bn3 = try BatchNorm2d(planes * Bottleneck.expansion, zeroGamma: c.zeroGamma)
        super.init(activation: c.activation)
        child("conv1", conv1); child("bn1", bn1); child("conv2", conv2); child("bn2", bn2); child("conv3", conv3); child("bn3", bn3)
        if c.squeezeExcite { se = child("se", try SqueezeExcite(planes * Bottleneck.expansion, generator: g)) }
        if let downsample { self.downsample = child("downsample", downsample) }
        child("act", act)
    }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try finish(bn3.after(conv3, then: nil, bn2.after(conv2, then: act, bn1.after(conv1, then: act, x))), x)
    }
}

public final class ResNet: Module {
    public let config: ResNetConfig
    let stem: Module, bn1: BatchNorm2d, act: Module, maxpool: Module?
    let stages: [Sequential]
    let avgpool = GlobalAvgPool(), flatten = Flatten()
    let fc: Linear

    /// Builds the network; bad settings are errors that say which and why.
    public init(_ config: ResNetConfig) throws {
        let c = config
        let depths: [Int: (bottleneck: Bool, blocks: [Int])] = [
            18: (false, [2, 2, 2, 2]), 34: (false, [3, 4, 6, 3]), 50: (true, [3, 4, 6, 3]),
            101: (true, [3, 4, 23, 3]), 152: (true, [3, 8, 36, 3]),
        ]
        let small = c.isSmall
        guard small || depths[c.depth] != nil else {
            throw TensorError("resnet", "depth must be one of \((ResNetConfig.imagenetDepths + ResNetConfig.smallDepths).map(String.init).joined(separator: ", ")), got \(c.depth)")
        }
        guard c.classes > 0, c.inChannels > 0, c.groups > 0, c.widthPerGroup > 0, (c.width ?? 16) > 0 else {
            throw TensorError("resnet", "classes, in_channels, width, groups and width_per_group must be positive")
        }
        self.config = c
        let g = Generator(seed: c.seed)
        let base = c.width ?? (small ? 16 : 64)
        let deepStem = c.variant.deepStem
        // Stem: conv1 (deep in C/D), bn1, act, max-pool (ImageNet only).
        if deepStem {
            let half = small ? max(1, base / 2) : base / 2
            let s = small ? 1 : 2
            func act() -> Module { c.activation.module() }
            stem = Sequential([
                try Conv2d(c.inChannels, half, kernel: 3, stride: s, padding: 1, initializer: c.initializer, generator: g), try BatchNorm2d(half), act(),
                try Conv2d(half, half, kernel: 3, padding: 1, initializer: c.initializer, generator: g), try BatchNorm2d(half), act(),
                try Conv2d(half, base, kernel: 3, padding: 1, initializer: c.initializer, generator: g),
            ])
        } else if small {
            stem = try Conv2d(c.inChannels, base, kernel: 3, padding: 1, initializer: c.initializer, generator: g)
        } else {
            stem = try Conv2d(c.inChannels, base, kernel: 7, stride: 2, padding: 3, initializer: c.initializer, generator: g)
        }
        bn1 = try BatchNorm2d(base)
        act = c.activation.module()
        maxpool = small ? nil : MaxPool2d(kernel: 3, stride: 2, padding: 1)
        // Stages.
        let bottleneck = small ? false : (depths[c.depth]?.bottleneck ?? false)
        let blocks = small ? [Int](repeating: (c.depth - 2) / 6, count: 3) : (depths[c.depth]?.blocks ?? [])
        let expansion = bottleneck ? Bottleneck.expansion : BasicBlock.expansion
        var inPlanes = base
        var stages: [Sequential] = []
        for (i, n) in blocks.enumerated() {
            let planes = base << i, stride = i == 0 ? 1 : 2
            var layers: [Module] = []
            for b in 0..<n {
                let s = b == 0 ? stride : 1
                var down: Module?
                if s != 1 || inPlanes != planes * expansion {
                    let conv = try Conv2d(inPlanes, planes * expansion, kernel: 1, stride: c.variant == .d ? 1 : s, initializer: c.initializer, generator: g)
                    let bn = try BatchNorm2d(planes * expansion)
                    if c.variant == .d {
                        let pool: Module = s > 1 ? AvgPool2d(kernel: 2, stride: s, ceilMode: true, countIncludePad: false) : Identity()
                        down = Sequential([pool, conv, bn])
                    } else {
                        down = Sequential([conv, bn])
                    }
                }
                layers.append(bottleneck
                    ? try Bottleneck(inPlanes, planes, stride: s, downsample: down, config: c, generator: g)
                    : try BasicBlock(inPlanes, planes, stride: s, downsample: down, config: c, generator: g))
                inPlanes = planes * expansion
            }
            stages.append(Sequential(layers))
        }
        self.stages = stages
        fc = try Linear(inPlanes, c.classes, initializer: c.initializer, generator: g)
        super.init()
        child("conv1", stem)
        child("bn1", bn1)
        child("act1", act)
        if let maxpool { child("maxpool", maxpool) }
        for (i, s) in stages.enumerated() { child("layer\(i + 1)", s) }
        child("avgpool", avgpool)
        child("flatten", flatten)
        child("fc", fc)
    }

    public override var typeName: String { "ResNet-\(config.depth)\(config.variant.rawValue.uppercased())" }

    public override func forward(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == config.inChannels else {
            throw TensorError("resnet", "input must be [N, \(config.inChannels), H, W], got \(x.shape)")
        }
        var y = try (stem as? Conv2d).map { try bn1.after($0, then: act, x) } ?? bn1.then(act, stem(x))
        if let maxpool { y = try maxpool(y) }
        for s in stages { y = try s(y) }
        return try fc(flatten(avgpool(y)))
    }

}

extension Module {
    /// The batch-norm layers whose γ is zero (the last of each block, with zero_gamma).
    public var zeroGammaLayers: [String] {
        namedModules().compactMap { name, m in
            guard let bn = m as? BatchNorm2d else { return nil }
            return bn.weight.scalars.allSatisfy { $0 == 0 } ? name : nil
        }
    }
}
