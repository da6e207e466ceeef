import TrickbookModels
import TrickbookTensor

/// The linear scaling rule (Goyal et al., used by the paper): lr = base · batch / 256.
public func linearScaledLR(_ base: Float = 0.1, batch: Int, baseBatch: Int = 256) -> Float {
    base * Float(batch) / Float(baseBatch)
}

/// A set of parameters sharing a weight decay.
public struct ParamGroup {
    public let name: String
    public let parameters: [(String, Tensor)]
    public let weightDecay: Float
}

/// SGD with momentum in PyTorch's formulation, so that runs compare:
///   g ← g + λ·w (the group's weight decay),  b ← μ·b + g (b = g at the first step),
///   update = g + μ·b (Nesterov) or b (classic),  w ← w − η·update.
public final class SGD {
    public var lr: Float
    public let momentum: Float
    public let nesterov: Bool
    public let groups: [ParamGroup]
    /// Momentum buffers by parameter name.
    public private(set) var buffers: [String: Tensor] = [:]

    /// With `noBiasDecay` only conv and linear weights decay, never biases or BN's γ and β (the
    /// paper's "no bias decay"); otherwise every parameter does.
    public init(_ model: Module, lr: Float, momentum: Float = 0.9, nesterov: Bool = true, weightDecay: Float = 1e-4, noBiasDecay: Bool = false) throws {
        guard lr >= 0, lr.isFinite else { throw TensorError("sgd", "learning rate must be finite and non-negative, got \(lr)") }
        guard momentum >= 0 && momentum < 1 else { throw TensorError("sgd", "momentum must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0 else { throw TensorError("sgd", "weight decay must be non-negative, got \(weightDecay)") }
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        if noBiasDecay {
            var decay: [(String, Tensor)] = [], none: [(String, Tensor)] = []
            var seen = Set<ObjectIdentifier>()  // a tensor shared by two modules is updated once
            for (moduleName, m) in model.namedModules() {
                for (pname, p) in m.ownParameters where seen.insert(ObjectIdentifier(p)).inserted {
                    let full = moduleName.isEmpty ? pname : moduleName + "." + pname
                    if pname == "weight" && (m is Conv2d || m is Linear) { decay.append((full, p)) } else { none.append((full, p)) }
                }
            }
            groups = [ParamGroup(name: "decay", parameters: decay, weightDecay: weightDecay),
                      ParamGroup(name: "no_decay", parameters: none, weightDecay: 0)]
        } else {
            groups = [ParamGroup(name: "all", parameters: model.namedParameters(), weightDecay: weightDecay)]
        }
    }

    /// One update from the accumulated gradients (parameters without a gradient are left alone).
    public func step() throws {
        try withNoGrad {
            for group in groups {
                for (name, p) in group.parameters {
                    guard let grad = p.grad else { continue }
                    // g + wd·p, the momentum buffer and the update in one pass (see Tensor.sgdStep).
                    let b = try p.sgdStep(grad: grad, momentumBuffer: buffers[name], lr: lr, momentum: momentum,
                                          weightDecay: group.weightDecay, nesterov: nesterov)
                    if let b { buffers[name] = b }
                }
            }
        }
    }

    /// Restores momentum buffers (from a checkpoint).
    public func setBuffer(_ name: String, _ t: Tensor) { buffers[name] = t }
    /// Every momentum buffer at once (a snapshot's): the ones it does not name are dropped.
    public func replaceBuffers(_ all: [String: Tensor]) { buffers = all }

    /// Which tensors are in which group, for `opt.groups()`.
    public func report() -> String {
        groups.map { g in
            let n = g.parameters.reduce(0) { $0 + $1.1.count }
            return "\(g.name): weight decay \(g.weightDecay), \(g.parameters.count) tensors, \(n) values\n" +
                g.parameters.map { "  \($0.0) \($0.1.shape)" }.joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
