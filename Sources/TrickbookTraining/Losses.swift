import TrickbookModels
import TrickbookTensor

/// How label smoothing spreads ε: the paper's form gives 1 − ε to the true class and ε/(K − 1) to
/// each other; PyTorch and timm mix with the uniform distribution: (1 − ε)·onehot + ε/K.
public enum SmoothingForm: String, Sendable, CaseIterable { case paper, uniform }

/// Targets smoothed by ε: one-hot or soft rows q of shape [N, K].
///   paper:   q' = (1 − ε)·q + ε/(K − 1)·(1 − q)   (for one-hot: 1 − ε and ε/(K − 1))
///   uniform: q' = (1 − ε)·q + ε/K
public func smoothTargets(_ q: Tensor, epsilon: Float, form: SmoothingForm = .paper) throws -> Tensor {
    guard q.rank == 2, q.shape[1] >= 2 else { throw TensorError("label_smoothing", "targets must be [N, K] with K ≥ 2, got \(q.shape)") }
    guard epsilon >= 0 && epsilon < 1 else { throw TensorError("label_smoothing", "epsilon must be in [0, 1), got \(epsilon)") }
    let k = Float(q.shape[1])
    switch form {
    case .paper: return try q * (1 - epsilon) + (1 - q) * (epsilon / (k - 1))
    case .uniform: return try q * (1 - epsilon) + epsilon / k
    }
}

/// Integer labels [N] → one-hot rows [N, K], with the label checked.
public func oneHot(_ labels: [Int], classes: Int) throws -> Tensor {
    for (i, l) in labels.enumerated() where l < 0 || l >= classes {
        throw TensorError("cross_entropy", "label \(l) at position \(i) is not in 0..<\(classes)")
    }
    return try Tensor(labels.map(Float.init), shape: [labels.count]).oneHot(classes: classes)
}

/// −Σ q·log softmax(z), averaged over the batch. z [N, K], q [N, K] rows of probabilities.
public func softCrossEntropy(_ logits: Tensor, _ targets: Tensor) throws -> Tensor {
    guard logits.rank == 2, targets.shape == logits.shape else {
        throw TensorError("cross_entropy", "logits \(logits.shape) and targets \(targets.shape) must both be [N, K]")
    }
    return try (logits.logSoftmax(axis: 1) * targets).sum(axis: 1).mean().neg()
}

/// Softmax cross-entropy with integer labels, optionally smoothed.
public func crossEntropy(_ logits: Tensor, labels: [Int], smoothing: Float = 0, form: SmoothingForm = .paper) throws -> Tensor {
    guard logits.rank == 2, logits.shape[0] == labels.count else {
        throw TensorError("cross_entropy", "logits \(logits.shape) do not match \(labels.count) labels")
    }
    var q = try oneHot(labels, classes: logits.shape[1])
    if smoothing > 0 { q = try smoothTargets(q, epsilon: smoothing, form: form) }
    return try softCrossEntropy(logits, q)
}

/// What a batch is trained towards: integer labels, or soft target rows (mixup, CutMix).
public enum Targets {
    case labels([Int])
    case soft(Tensor)

    /// As probability rows [N, K], smoothed if asked.
    public func rows(classes: Int, smoothing: Float, form: SmoothingForm) throws -> Tensor {
        var q: Tensor
        switch self {
        case .labels(let l): q = try oneHot(l, classes: classes)
        case .soft(let t): q = t
        }
        if smoothing > 0 { q = try smoothTargets(q, epsilon: smoothing, form: form) }
        return q
    }
}

/// What a training step minimises: a one-element tensor from the logits and the targets
/// (`inputs`, the batch's images, for a loss that needs them, such as distillation's teacher).
public protocol Criterion {
    func callAsFunction(_ logits: Tensor, _ targets: Targets, inputs: Tensor?) throws -> Tensor
}

/// The classification loss of a training run: cross-entropy, optionally smoothed, optionally
/// with knowledge distillation from a teacher.
public struct Loss: Criterion {
    public var smoothing: Float = 0
    public var form: SmoothingForm = .paper
    public var distillation: Distillation?

    public init(smoothing: Float = 0, form: SmoothingForm = .paper, distillation: Distillation? = nil) {
        self.smoothing = smoothing
        self.form = form
        self.distillation = distillation
    }

    /// The loss for a batch: `inputs` are needed only by a teacher.
    public func callAsFunction(_ logits: Tensor, _ targets: Targets, inputs: Tensor? = nil) throws -> Tensor {
        let hard = try softCrossEntropy(logits, try targets.rows(classes: logits.shape[1], smoothing: smoothing, form: form))
        guard let kd = distillation else { return hard }
        guard let inputs else { throw TensorError("distillation", "the teacher needs the batch's inputs") }
        return try kd.combine(hard: hard, studentLogits: logits, inputs: inputs)
    }
}

/// Knowledge distillation (Hinton et al.; the paper's section 5.3, T = 20):
///   loss = hard_weight · ℓ(y, softmax(z)) + soft_weight · T² · ℓ(softmax(r/T), softmax(z/T)),
/// with ℓ the cross-entropy, z the student's and r the teacher's logits. The paper uses both
/// weights 1; T² keeps the soft term's gradients at the hard term's scale. The teacher runs in
/// evaluation mode without gradients.
///
/// The soft term is computed as the KL divergence KL(p ‖ softmax(z/T)) = ℓ(p, softmax(z/T)) − H(p),
/// p = softmax(r/T): the same gradient (the teacher's entropy H(p) does not depend on the student),
/// but a value that is 0 when the student matches the teacher. The cross-entropy itself would
/// report T²·H(p), about 38 at T = 4 for ten nearly even classes, however well the student learns.
public struct Distillation {
    public let teacher: Module
    public let temperature: Float
    public var hardWeight: Float = 1
    public var softWeight: Float = 1

    public init(teacher: Module, temperature: Float = 20, hardWeight: Float = 1, softWeight: Float = 1) throws {
        guard temperature > 0 else { throw TensorError("distillation", "temperature must be positive, got \(temperature)") }
        self.teacher = teacher
        self.temperature = temperature
        self.hardWeight = hardWeight
        self.softWeight = softWeight
    }

    /// The teacher's softened distribution softmax(r/T) for a batch.
    public func teacherTargets(_ inputs: Tensor) throws -> Tensor {
        try teacherLogProbabilities(inputs).exp()
    }

    /// log softmax(r/T), without gradients, the teacher in evaluation mode.
    func teacherLogProbabilities(_ inputs: Tensor) throws -> Tensor {
        teacher.eval()
        return try withNoGrad { try (teacher(inputs) / temperature).logSoftmax(axis: 1) }
    }

    /// KL(p ‖ softmax(z/T)) = Σ p (log p − log softmax(z/T)), averaged over the batch.
    public func softTerm(_ z: Tensor, inputs: Tensor) throws -> Tensor {
        let logP = try teacherLogProbabilities(inputs)
        let p = withNoGrad { logP.exp() }
        return try ((logP - (z / temperature).logSoftmax(axis: 1)) * p).sum(axis: 1).mean()
    }

    func combine(hard: Tensor, studentLogits z: Tensor, inputs: Tensor) throws -> Tensor {
        try hard * hardWeight + (try softTerm(z, inputs: inputs)) * (softWeight * temperature * temperature)
    }
}
