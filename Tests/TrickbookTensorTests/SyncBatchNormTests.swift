import Testing
@testable import TrickbookTensor

/// Synchronised batch norm: one process's share of a batch, its per-channel sums completed with a
/// partner's (what MPI's sum gives in data-parallel training), normalises and differentiates as
/// batch norm over the whole batch does.
@Suite struct SyncBatchNormTests {
    /// Per-channel Σx and Σx² of x [N, C, H, W], and its values per channel.
    func channelSums(_ x: Tensor) -> (sum: [Double], sq: [Double], count: Int) {
        let n = x.shape[0], c = x.shape[1], s = x.shape[2] * x.shape[3], v = x.scalars
        var sum = [Double](repeating: 0, count: c), sq = sum
        for i in 0..<n { for ch in 0..<c { for k in 0..<s { let e = Double(v[(i * c + ch) * s + k]); sum[ch] += e; sq[ch] += e * e } } }
        return (sum, sq, n * s)
    }

    /// The partner's contribution: its forward sums, and (when given its outputs' gradient g)
    /// its backward sums Σg and Σg·(x − μ) with the global mean μ.
    func partner(_ x: Tensor, gradient g: Tensor?, mean: [Double]) -> (inout [Double]) throws -> Void {
        let (sum, sq, count) = channelSums(x)
        let c = x.shape[1], s = x.shape[2] * x.shape[3], n = x.shape[0], xv = x.scalars
        var sumG = [Double](repeating: 0, count: c), sumGX = sumG
        if let g {
            let gv = g.scalars
            for i in 0..<n { for ch in 0..<c { for k in 0..<s {
                let j = (i * c + ch) * s + k
                sumG[ch] += Double(gv[j]); sumGX[ch] += Double(gv[j]) * (Double(xv[j]) - mean[ch])
            } } }
        }
        return { packed in
            let forward = packed[2 * c] > 0  // a forward pass sends its count; backward sends 0
            for ch in 0..<c {
                packed[ch] += forward ? sum[ch] : sumG[ch]
                packed[c + ch] += forward ? sq[ch] : sumGX[ch]
            }
            if forward { packed[2 * c] += Double(count) }
        }
    }

    @Test func aShareWithItsPartnersSumsIsTheWholeBatch() throws {
        let whole = try random([8, 3, 2, 3], seed: 61, low: -2, high: 2)
        let gamma = try random([3], seed: 62, low: 0.5, high: 1.5), beta = try random([3], seed: 63)
        let r = try random([8, 3, 2, 3], seed: 64)
        // Batch norm over all 8 images.
        let x = whole.detached(), g = gamma.detached(), b = beta.detached()
        for t in [x, g, b] { t.requiresGrad = true }
        let rm = try Tensor.zeros([3]), rv = try Tensor.ones([3])
        let y = try x.batchNorm(weight: g, bias: b, runningMean: rm, runningVar: rv, training: true)
        try (y * r).sum().backward()
        // The first 4 images, completed by the last 4's sums.
        let (sum, _, count) = channelSums(whole)
        let mean = sum.map { $0 / Double(count) }
        let share = try whole.slice(axis: 0, start: 0, end: 4), other = try whole.slice(axis: 0, start: 4, end: 8)
        let a = share.detached(), ga = gamma.detached(), ba = beta.detached()
        for t in [a, ga, ba] { t.requiresGrad = true }
        let rm2 = try Tensor.zeros([3]), rv2 = try Tensor.ones([3])
        let ya = try a.batchNorm(weight: ga, bias: ba, runningMean: rm2, runningVar: rv2, training: true,
                                 across: partner(other, gradient: try r.slice(axis: 0, start: 4, end: 8), mean: mean))
        try (ya * r.slice(axis: 0, start: 0, end: 4)).sum().backward()
        expectClose(ya.scalars, try y.slice(axis: 0, start: 0, end: 4).scalars, "outputs")
        expectClose(a.grad?.scalars ?? [], try x.grad?.slice(axis: 0, start: 0, end: 4).scalars ?? [], "the share's input gradient")
        // Running statistics of the whole batch (unbiased variance over its 48 values).
        expectClose(rm2.scalars, rm.scalars, "running mean")
        expectClose(rv2.scalars, rv.scalars, "running variance")
        // γ and β: this share's part of the whole batch's gradient (the ranks' parts are summed
        // by the gradient average), so the other share's part completes it.
        let b2 = other.detached(), gb = gamma.detached(), bb = beta.detached()
        for t in [b2, gb, bb] { t.requiresGrad = true }
        let yb = try b2.batchNorm(weight: gb, bias: bb, runningMean: nil, runningVar: nil, training: true,
                                  across: partner(share, gradient: try r.slice(axis: 0, start: 0, end: 4), mean: mean))
        try (yb * r.slice(axis: 0, start: 4, end: 8)).sum().backward()
        let dGamma = zip(ga.grad?.scalars ?? [], gb.grad?.scalars ?? []).map { $0 + $1 }
        let dBeta = zip(ba.grad?.scalars ?? [], bb.grad?.scalars ?? []).map { $0 + $1 }
        expectClose(dGamma, g.grad?.scalars ?? [], "γ's gradient, both shares")
        expectClose(dBeta, b.grad?.scalars ?? [], "β's gradient, both shares")
        expectClose(b2.grad?.scalars ?? [], try x.grad?.slice(axis: 0, start: 4, end: 8).scalars ?? [], "the other share's input gradient")
    }

    /// Finite differences of a share's loss with the partner's images fixed (its outputs not in
    /// the loss: its backward sums are 0).
    @Test func gradientsOfAShareByFiniteDifferences() throws {
        let share = try random([3, 2, 2, 3], seed: 71, low: -2, high: 2), other = try random([2, 2, 2, 3], seed: 72, low: -1, high: 3)
        let gamma = try random([2], seed: 73, low: 0.5, high: 1.5), beta = try random([2], seed: 74)
        try gradCheck("synchronised batch_norm", [share, gamma, beta], eps: 1e-3, atol: 3e-2) { t in
            // The partner's backward sums are 0 whatever the global mean.
            try t[0].batchNorm(weight: t[1], bias: t[2], runningMean: nil, runningVar: nil, training: true,
                               across: partner(other, gradient: nil, mean: [0, 0]))
        }
    }
}
