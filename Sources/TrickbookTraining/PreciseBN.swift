import TrickbookModels
import TrickbookTensor

/// Precise BN (Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021; pycls's precise_bn):
/// replaces every batch norm's running mean and variance with the plain average of the batch
/// statistics of `batches`, computed with the model's final weights.
///
/// Why: the running statistics are an exponential average (momentum 0.1) over the last batches
/// of training, taken while the weights were still moving. Early in training, or at a high
/// learning rate, they describe older weights, and evaluation mode can then score far below
/// what the same weights reach with batch statistics.
///
/// Batch k (from 0) is folded in with momentum 1/(k + 1), which makes the result the exact mean
/// over the batches. Momentum and the training flag are restored afterwards. `next` gives the
/// input batches, nil at the end. Returns how many batches were used.
@discardableResult
public func preciseBatchNorm(_ model: Module, next: () throws -> Tensor?) throws -> Int {
    let norms = model.namedModules().compactMap { $0.1 as? BatchNorm2d }
    let wasTraining = model.training
    let momenta = norms.map(\.momentum)
    defer {
        for (bn, m) in zip(norms, momenta) { bn.momentum = m }
        model.train(wasTraining)
    }
    model.train()
    var count = 0
    while let x = try next() {
        for bn in norms { bn.momentum = 1 / Float(count + 1) }
        _ = try withNoGrad { try model(x) }
        count += 1
    }
    guard count > 0 else { throw TensorError("precise_bn", "no batches to take the statistics from") }
    return count
}

/// Precise BN over a list of input batches.
@discardableResult
public func preciseBatchNorm(_ model: Module, batches: [Tensor]) throws -> Int {
    var it = batches.makeIterator()
    return try preciseBatchNorm(model) { it.next() }
}
