import TrickbookData
import TrickbookModels
import TrickbookTensor

/// What one batch scored: correct top-1 and top-5 counts and the summed loss.
public struct BatchScore {
    public let top1: Int, top5: Int
    /// The cross-entropy summed over the batch (so that batches of any size add up).
    public let lossSum: Double
    public let size: Int
}

/// The model's logits for a batch in evaluation mode without gradients, in `precision` (FP16 or
/// BF16 run the model as low-precision training ran it).
public func evaluationLogits(_ model: Module, _ images: Tensor, precision: Precision = .fp32) throws -> Tensor {
    model.eval()
    guard let format = precision.format else { return try withNoGrad { try model(images) } }
    return try lowPrecisionLogits(model, images, format: format)
}

/// Scores one batch in evaluation mode.
public func evaluateBatch(_ model: Module, _ batch: Batch, precision: Precision = .fp32) throws -> BatchScore {
    let logits = try evaluationLogits(model, batch.images, precision: precision)
    guard logits.rank == 2 else { throw TensorError("evaluate", "the model gave logits of shape \(logits.shape), not [N, classes]") }
    var metrics = Metrics(classes: logits.shape[1])
    let loss = try withNoGrad { try crossEntropy(logits, labels: batch.labels) }.item
    try metrics.add(logits: logits, labels: batch.labels)
    return BatchScore(top1: metrics.top1Correct, top5: metrics.top5Correct, lossSum: Double(loss) * Double(batch.labels.count), size: batch.labels.count)
}

/// One image with its label and what the model predicted for it.
public struct Prediction {
    public let image: Image
    public let label: Int
    public let predicted: Int
}

/// The model's predictions for the first `count` images of a dataset (the model sees image k
/// through `transform`, drawn from seed + k; the untransformed images are returned for showing).
public func predictions(_ model: Module, _ dataset: any Dataset, transform: (any Transform)?, count: Int, seed: UInt64 = 0) throws -> [Prediction] {
    let n = min(max(0, count), dataset.count)
    guard n > 0 else { return [] }
    var raw: [Image] = [], shown: [Image] = [], labels: [Int] = []
    for k in 0..<n {
        let (im, label) = try dataset.item(k)
        raw.append(im)
        shown.append(try transform.map { try $0(im, Generator(seed: seed &+ UInt64(k))) } ?? im)
        labels.append(label)
    }
    let predicted = try evaluationLogits(model, try stack(shown)).argmax(axis: 1).scalars
    return (0..<n).map { Prediction(image: raw[$0], label: labels[$0], predicted: Int(predicted[$0])) }
}

extension Targets {
    /// A mixed batch's soft targets (mixup, CutMix).
    public init(_ mixed: MixedBatch) { self = .soft(mixed.targets) }
}
