import Foundation
import TrickbookTensor

extension Generator {
    /// Gamma(shape, 1) by Marsaglia and Tsang (shape < 1 through Gamma(shape + 1)·U^(1/shape)).
    public func gamma(_ shape: Double) -> Double {
        if shape < 1 { return gamma(shape + 1) * Foundation.pow(max(nextDouble(), 1e-300), 1 / shape) }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat { x = Double(normal()); v = 1 + c * x } while v <= 0
            v = v * v * v
            let u = nextDouble()
            if u < 1 - 0.0331 * x * x * x * x || Foundation.log(max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + Foundation.log(v)) { return d * v }
        }
    }

    /// Beta(a, b) from two gammas.
    public func beta(_ a: Double, _ b: Double) -> Double {
        let x = gamma(a), y = gamma(b)
        return x + y > 0 ? x / (x + y) : 0.5
    }
}

/// The result of mixing a batch: images, soft targets [N, K] and the λ used.
public struct MixedBatch {
    public let images: Tensor
    public let targets: Tensor
    public let lambda: Double
    public let permutation: [Int]

    public init(images: Tensor, targets: Tensor, lambda: Double, permutation: [Int]) {
        (self.images, self.targets, self.lambda, self.permutation) = (images, targets, lambda, permutation)
    }
}

private func checkBatch(_ x: Tensor, _ labels: [Int], _ classes: Int, _ op: String) throws -> Tensor {
    guard x.rank == 4, x.shape[0] == labels.count, labels.count > 0 else {
        throw TensorError(op, "needs images [N, C, H, W] and N labels, got \(x.shape) and \(labels.count)")
    }
    for (i, l) in labels.enumerated() where l < 0 || l >= classes { throw TensorError(op, "label \(l) at \(i) is not in 0..<\(classes)") }
    return try Tensor(labels.map(Float.init), shape: [labels.count]).oneHot(classes: classes)
}

/// mixup (Zhang et al.): λ ~ Beta(α, α); x̃ = λx + (1 − λ)x[π], ỹ = λy + (1 − λ)y[π] with π a
/// random permutation of the batch.
public func mixup(_ x: Tensor, labels: [Int], classes: Int, alpha: Double = 0.2, generator g: Generator) throws -> MixedBatch {
    guard alpha > 0, alpha.isFinite else { throw TensorError("mixup", "alpha must be positive and finite, got \(alpha)") }
    let y = try checkBatch(x, labels, classes, "mixup")
    let lam = g.beta(alpha, alpha)
    let perm = try permutationIndices(labels.count, generator: g)
    let l = Float(lam)
    let images = try x * l + (try x.indexSelect(axis: 0, indices: perm)) * (1 - l)
    let targets = try y * l + (try y.indexSelect(axis: 0, indices: perm)) * (1 - l)
    return MixedBatch(images: images.detached(), targets: targets, lambda: lam, permutation: perm)
}

/// CutMix (Yun et al.): λ ~ Beta(α, α); a box of area 1 − λ (center uniform, clipped at the
/// border) is pasted from x[π]; λ is then corrected to the area actually kept.
public func cutmix(_ x: Tensor, labels: [Int], classes: Int, alpha: Double = 1, generator g: Generator) throws -> MixedBatch {
    guard alpha > 0, alpha.isFinite else { throw TensorError("cutmix", "alpha must be positive and finite, got \(alpha)") }
    let y = try checkBatch(x, labels, classes, "cutmix")
    let lam = g.beta(alpha, alpha)
    let perm = try permutationIndices(labels.count, generator: g)
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let cutH = Int(Double(h) * (1 - lam).squareRoot()), cutW = Int(Double(w) * (1 - lam).squareRoot())
    let cy = g.int(below: h), cx = g.int(below: w)
    let y0 = max(0, cy - cutH / 2), y1 = min(h, cy + cutH / 2), x0 = max(0, cx - cutW / 2), x1 = min(w, cx + cutW / 2)
    var px = x.scalars
    let src = px
    for i in 0..<n { for ch in 0..<c { for yy in y0..<max(y0, y1) { for xx in x0..<max(x0, x1) {
        px[((i * c + ch) * h + yy) * w + xx] = src[((perm[i] * c + ch) * h + yy) * w + xx]
    } } } }
    let kept = 1 - Double(max(0, y1 - y0) * max(0, x1 - x0)) / Double(h * w)
    let l = Float(kept)
    let targets = try y * l + (try y.indexSelect(axis: 0, indices: perm)) * (1 - l)
    return MixedBatch(images: try Tensor(px, shape: x.shape), targets: targets, lambda: kept, permutation: perm)
}
