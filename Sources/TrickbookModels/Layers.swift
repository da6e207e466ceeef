import Foundation
import TrickbookTensor

/// How weights start: Xavier uniform as in the paper (a = √(6 / (fan_in + fan_out))) or Kaiming
/// normal (std = √(2 / fan_out), as torchvision's ResNet).
public enum Initializer: String, Sendable, CaseIterable {
    case xavier, kaiming

    func weight(_ shape: [Int], fanIn: Int, fanOut: Int, generator: Generator) throws -> Tensor {
        switch self {
        case .xavier:
            let a = (6 / Float(fanIn + fanOut)).squareRoot()
            return try Tensor.uniform(shape, low: -a, high: a, generator: generator)
        case .kaiming:
            return try Tensor.normal(shape, std: (2 / Float(fanOut)).squareRoot(), generator: generator)
        }
    }
}

public final class Conv2d: Module {
    public let inChannels, outChannels, kernel, stride, padding, groups: Int
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1,
                bias: Bool = false, initializer: Initializer = .xavier, generator: Generator) throws {
        guard inChannels > 0, outChannels > 0, kernel > 0, stride > 0, padding >= 0, groups > 0,
              inChannels % groups == 0, outChannels % groups == 0 else {
            throw TensorError("Conv2d", "invalid settings: \(inChannels)→\(outChannels), kernel \(kernel), stride \(stride), padding \(padding), groups \(groups)")
        }
        (self.inChannels, self.outChannels, self.kernel, self.stride, self.padding, self.groups) = (inChannels, outChannels, kernel, stride, padding, groups)
        let fanIn = inChannels / groups * kernel * kernel, fanOut = outChannels / groups * kernel * kernel
        let w = try initializer.weight([outChannels, inChannels / groups, kernel, kernel], fanIn: fanIn, fanOut: fanOut, generator: generator)
        let b = bias ? try Tensor.zeros([outChannels]) : nil
        weight = w
        self.bias = b
        super.init()
        _ = param("weight", w)
        if let b { _ = param("bias", b) }
    }

    public override var details: String { "\(inChannels)→\(outChannels), \(kernel)x\(kernel)" + (stride > 1 ? ", stride \(stride)" : "") + (groups > 1 ? ", groups \(groups)" : "") }

    public override func forward(_ x: Tensor) throws -> Tensor {
        try x.conv2d(weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding), groups: groups)
    }

    /// Multiply-accumulates for an output of this spatial size.
    func macs(outputShape: [Int]) -> Int {
        guard outputShape.count == 4 else { return 0 }
        return outputShape[1] * outputShape[2] * outputShape[3] * (inChannels / groups) * kernel * kernel
    }
}

public final class BatchNorm2d: Module {
    public let channels: Int
    public let eps: Float
    /// The running statistics' update weight; precise BN changes it per batch to take an exact average.
    public var momentum: Float
    public let weight, bias, runningMean, runningVar, batchesTracked: Tensor
    /// Synchronised batch norm: sums per-channel statistics over every process of a data-parallel
    /// run (nil: this process's batch alone, as the paper trains).
    public var synchronize: ((inout [Double]) throws -> Void)?

    public init(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5, zeroGamma: Bool = false) throws {
        self.channels = channels
        self.momentum = momentum
        self.eps = eps
        weight = try Tensor.full([channels], value: zeroGamma ? 0 : 1)
        bias = try Tensor.zeros([channels])
        runningMean = try Tensor.zeros([channels])
        runningVar = try Tensor.ones([channels])
        batchesTracked = try Tensor.zeros([])
        super.init()
        _ = param("weight", weight)
        _ = param("bias", bias)
        _ = buffer("running_mean", runningMean)
        _ = buffer("running_var", runningVar)
        _ = buffer("num_batches_tracked", batchesTracked)
    }

    public override var details: String { "\(channels)" }

    public override func forward(_ x: Tensor) throws -> Tensor { try normalize(x, relu: false) }

    /// This layer and then `act`: in one pass when `act` is a ReLU and nothing looks at the step
    /// between (the ReLU's own pass and its gradient's were 12% of ResNet-50's training step).
    public func then(_ act: Module, _ x: Tensor) throws -> Tensor {
        guard act is ReLU, !Module.seesEveryLayer else { return try act(self(x)) }
        try Interruption.check("the forward pass of \(typeName)")
        return try normalize(x, relu: true)
    }

    /// conv, this layer and then act (nil: none). In evaluation without gradients, when nothing
    /// looks between them and act is a ReLU or nil, the three run as one oneDNN convolution (this
    /// layer's map folded into its weights and bias, the ReLU applied as it stores): ResNet-50's
    /// evaluation no longer passes over every activation for its batch norms.
    public func after(_ conv: Conv2d, then act: Module?, _ x: Tensor) throws -> Tensor {
        if !training, !GradMode.isEnabled, act == nil || act is ReLU, !Module.seesEveryLayer,
           let y = try x.conv2dFoldingBatchNorm(
               weight: conv.weight, bias: conv.bias, stride: (conv.stride, conv.stride), padding: (conv.padding, conv.padding),
               groups: conv.groups, gamma: weight, beta: bias, mean: runningMean, variance: runningVar, eps: eps, relu: act != nil) {
            try Interruption.check("the forward pass of \(conv.typeName)")
            return y
        }
        let z = try conv(x)
        if let act { return try then(act, z) }
        return try self(z)
    }

    private func normalize(_ x: Tensor, relu: Bool) throws -> Tensor {
        if training { batchesTracked.withUnsafeMutableBufferPointer { $0[0] += 1 } }
        return try x.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                               training: training, momentum: momentum, eps: eps, relu: relu, across: synchronize)
    }
}

public final class Linear: Module {
    public let inFeatures, outFeatures: Int
    public let weight: Tensor, bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, initializer: Initializer = .xavier, generator: Generator) throws {
        guard inFeatures > 0, outFeatures > 0 else { throw TensorError("Linear", "invalid sizes \(inFeatures)→\(outFeatures)") }
        (self.inFeatures, self.outFeatures) = (inFeatures, outFeatures)
        weight = try initializer.weight([outFeatures, inFeatures], fanIn: inFeatures, fanOut: outFeatures, generator: generator)
        self.bias = bias ? try Tensor.zeros([outFeatures]) : nil
        super.init()
        _ = param("weight", weight)
        if let b = self.bias { _ = param("bias", b) }
    }

    public override var details: String { "\(inFeatures)→\(outFeatures)" }
    public override func forward(_ x: Tensor) throws -> Tensor { try x.linear(weight: weight, bias: bias) }
}

public final class ReLU: Module {
    public override func forward(_ x: Tensor) throws -> Tensor { x.relu() }
}

/// swish / SiLU: x·σ(x).
public final class Swish: Module {
    public override func forward(_ x: Tensor) throws -> Tensor { x.silu() }
}

public final class MaxPool2d: Module {
    let kernel, stride, padding: Int
    public init(kernel: Int, stride: Int, padding: Int = 0) { (self.kernel, self.stride, self.padding) = (kernel, stride, padding) }
    public override var details: String { "\(kernel)x\(kernel), stride \(stride)" }
    public override func forward(_ x: Tensor) throws -> Tensor {
        try x.maxPool2d(kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
    }
}

public final class AvgPool2d: Module {
    let kernel, stride: Int, ceilMode: Bool, countIncludePad: Bool
    public init(kernel: Int, stride: Int, ceilMode: Bool = false, countIncludePad: Bool = true) {
        (self.kernel, self.stride, self.ceilMode, self.countIncludePad) = (kernel, stride, ceilMode, countIncludePad)
    }
    public override var details: String { "\(kernel)x\(kernel), stride \(stride)" }
    public override func forward(_ x: Tensor) throws -> Tensor {
        try x.avgPool2d(kernel: (kernel, kernel), stride: (stride, stride), ceilMode: ceilMode, countIncludePad: countIncludePad)
    }
}

public final class GlobalAvgPool: Module {
    public override func forward(_ x: Tensor) throws -> Tensor { try x.globalAvgPool2d() }
}

public final class Flatten: Module {
    public override func forward(_ x: Tensor) throws -> Tensor { try x.flattened(from: 1) }
}

public final class Dropout: Module {
    let p: Float, generator: Generator
    public init(p: Float, generator: Generator) { self.p = p; self.generator = generator }
    public override func forward(_ x: Tensor) throws -> Tensor { try x.dropout(p: p, training: training, generator: generator) }
}

/// A placeholder that passes its input through (timm's `downsample.0` when there is no pooling).
public final class Identity: Module {}

/// Children run one after another, named "0", "1", …
public final class Sequential: Module {
    public init(_ layers: [Module]) {
        super.init()
        for (i, l) in layers.enumerated() { child(String(i), l) }
    }
    public override func forward(_ x: Tensor) throws -> Tensor {
        var y = x
        for (_, m) in children { y = try m(y) }
        return y
    }
}

/// A residual connection: act(body(x) + shortcut(x)), the shortcut being the identity when nil.
/// Children are named "body", "shortcut" and "act".
public final class Residual: Module {
    let body: Module, shortcut: Module?, act: Module
    public init(_ body: Module, shortcut: Module? = nil, activation: Activation = .relu) {
        self.body = body
        self.shortcut = shortcut
        act = activation.module()
        super.init()
        child("body", body)
        if let shortcut { child("shortcut", shortcut) }
        child("act", act)
    }
    public override func forward(_ x: Tensor) throws -> Tensor {
        try act(body(x) + (try shortcut?(x) ?? x))
    }
}

/// Squeeze-and-excitation: channel weights from a global average, through a bottleneck of 1x1
/// convolutions (timm's `se.fc1`, `se.fc2`), scale the input: x · σ(fc2(relu(fc1(mean(x))))).
public final class SqueezeExcite: Module {
    let fc1: Conv2d, fc2: Conv2d
    public init(_ channels: Int, reduction: Int = 16, generator: Generator) throws {
        let hidden = max(8, channels / reduction)
        fc1 = try Conv2d(channels, hidden, kernel: 1, bias: true, generator: generator)
        fc2 = try Conv2d(hidden, channels, kernel: 1, bias: true, generator: generator)
        super.init()
        child("fc1", fc1)
        child("fc2", fc2)
    }
    public override func forward(_ x: Tensor) throws -> Tensor {
        let s = try fc2(fc1(x.globalAvgPool2d()).relu()).sigmoid()
        return try x * s
    }
}
