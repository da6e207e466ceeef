// Batch normalisation over the channel axis of [N, C] or [N, C, H, W].
//
// Training: x̂ = (x − μ_B) / √(σ²_B + ε) with the batch's biased variance; running stats move by
// momentum: r ← (1 − m)·r + m·stat, using the unbiased variance for r_var (as PyTorch does).
// Evaluation: the running stats take the place of the batch's.
// Backward (training): dx = γ/(M·√(σ²+ε)) · (M·g − Σg − x̂·Σ(g·x̂)), dγ = Σ g·x̂, dβ = Σ g.
// Both passes are per-channel sums and per-channel linear maps (ChannelGrid), on the input as it
// is held: a convolution's blocked output stays blocked. With `relu` the ReLU that follows is done
// in the same passes (out = max(0, ·); backward masks g by out > 0), bitwise as the two ops are.
// With `across` (synchronised batch norm in data-parallel training) the per-channel sums of both
// passes are summed over every process's batch before use, so that the statistics, and the
// gradient through them, are those of the whole global batch.

import CShims

extension Tensor {
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5, relu: Bool = false,
                          across: ((inout [Double]) throws -> Void)? = nil) throws -> Tensor {
        guard rank == 2 || rank == 4 else {
            throw TensorError("batch_norm", "input must be [N, C] or [N, C, H, W], got shape \(fmt(shape))")
        }
        let n = shape[0], c = shape[1], s = rank == 4 ? shape[2] * shape[3] : 1
        var m = n * s  // values per channel: over every process's batch when synchronised
        for (t, what) in [(weight, "weight"), (bias, "bias"), (runningMean, "running_mean"), (runningVar, "running_var")] {
            if let t, t.shape != [c] {
                throw TensorError("batch_norm", "\(what) must have shape [\(c)] for input \(fmt(shape)), got \(fmt(t.shape))")
            }
        }
        guard c > 0 else { throw TensorError("batch_norm", "input \(fmt(shape)) has no channels") }
        guard eps > 0 else { throw TensorError("batch_norm", "eps must be positive, got \(eps)") }
        if training {
            guard m > 1 else { throw TensorError("batch_norm", "training needs more than one value per channel, input is \(fmt(shape))") }
        } else {
            guard runningMean != nil, runningVar != nil else {
                throw TensorError("batch_norm", "evaluation mode needs running_mean and running_var")
            }
        }
        let blocked = layout.isBlocked  // FP32 or BF16 blocks, as a convolution left them
        let grid = ChannelGrid(n: n, c: c, s: s, blocked: blocked)
        let px = blocked ? heldStorage.pointer : storage.pointer
        var mu = [Float](repeating: 0, count: c), istd = mu
        // In shares (BatchShares), each share's sums as a rank takes them, then their sum.
        let shares = training ? BatchShares.of(n) : nil
        let xPer = (blocked ? heldStorage.count : count) / Swift.max(n, 1)
        if training {
            var (sum, sq) = shares.map { sumsByShare($0, c: c, s: s, blocked: blocked, (UnsafePointer(px), xPer), nil, center: mu, types: layout.bf16Bit(TB_U_BF16)).total }
                ?? grid.sums(px, nil, center: mu, types: layout.bf16Bit(TB_U_BF16))
            if let across { m = try sumAcross(across, &sum, &sq, count: m) }
            var variance = [Float](repeating: 0, count: c)
            for ch in 0..<c {
                let mean = sum[ch] / Double(m), v = Swift.max(0, sq[ch] / Double(m) - mean * mean)
                mu[ch] = Float(mean)
                variance[ch] = Float(v)
                istd[ch] = Float(1 / (v + Double(eps)).squareRoot())
            }
            if let rm = runningMean, let rv = runningVar {
                let pm = rm.storage.pointer, pv = rv.storage.pointer
                for ch in 0..<c {
                    pm[ch] = (1 - momentum) * pm[ch] + momentum * mu[ch]
                    pv[ch] = (1 - momentum) * pv[ch] + momentum * variance[ch] * Float(m) / Float(m - 1)
                }
            }
        } else if let rm = runningMean, let rv = runningVar {
            for ch in 0..<c {
                mu[ch] = rm.storage.pointer[ch]
                istd[ch] = 1 / (rv.storage.pointer[ch] + eps).squareRoot()
            }
        }
        let gamma = (0..<c).map { weight?.storage.pointer[$0] ?? 1 }
        let beta = (0..<c).map { bias?.storage.pointer[$0] ?? 0 }
        let scale = (0..<c).map { istd[$0] * gamma[$0] }
        let out = Tensor(uninitialized: shape, count: count, layout: blocked ? layout : .plain)
        grid.affine(px, nil, into: out.heldStorage.pointer, a: scale, b: nil, k: (0..<c).map { beta[$0] - mu[$0] * scale[$0] },
                    relu: relu, types: layout.bf16Bit(TB_U_BF16) | out.layout.bf16Bit(TB_OUT_BF16))
        let x = self
        var inputs = [x]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return out.recorded(relu ? "batch_norm_relu" : "batch_norm", inputs) { g, y in
            // x and g (and y, the ReLU's mask) as held when all are still blocked (as in a ResNet),
            // FP32 or BF16 each, else all plain FP32. dx is held as x is.
            let together = x.layout.isBlocked && g.layout.isBlocked && (!relu || y.layout.isBlocked)
            let grid = ChannelGrid(n: n, c: c, s: s, blocked: together)
            let px = together ? x.heldStorage.pointer : x.storage.pointer
            let pg = together ? g.heldStorage.pointer : g.storage.pointer
            let mask = relu ? UnsafePointer(together ? y.heldStorage.pointer : y.storage.pointer) : nil
            let dxLayout = together ? x.layout : .plain
            let types = together ? g.layout.bf16Bit(TB_U_BF16) | x.layout.bf16Bit(TB_V_BF16)
                | (relu ? y.layout.bf16Bit(TB_MASK_BF16) : 0) | dxLayout.bf16Bit(TB_OUT_BF16) : 0
            // Σg and Σg·(x − μ)
            var (sumG64, sumGXc) = (first: [Double](), second: [Double]())
            var local: (Tensor, Tensor)? = nil  // γ's and β's gradients: this process's share
            if let shares {
                // Each share's sums, and its γ and β gradients added in order, as ranks add theirs.
                func per(_ t: Tensor) -> Int { (together ? t.heldStorage.count : t.count) / n }
                let (total, parts) = sumsByShare(shares, c: c, s: s, blocked: together, (UnsafePointer(pg), per(g)), (UnsafePointer(px), per(x)), center: mu,
                                                 mask: mask.map { ($0, per(y)) }, types: types)
                (sumG64, sumGXc) = total
                let gammas = try parts.map { p in try Tensor(p.second.indices.map { Float(p.second[$0]) * istd[$0] }, shape: [c]) }
                let betas = try parts.map { p in try Tensor(p.first.map { Float($0) }, shape: [c]) }
                if let dg = Tensor.summingInOrder(gammas), let db = Tensor.summingInOrder(betas) { local = (dg, db) }
            } else {
                (sumG64, sumGXc) = grid.sums(pg, px, center: mu, mask: mask, types: types)
            }
            if let across, training {
                local = (try Tensor(sumGXc.indices.map { Float(sumGXc[$0]) * istd[$0] }, shape: [c]), try Tensor(sumG64.map { Float($0) }, shape: [c]))
                _ = try sumAcross(across, &sumG64, &sumGXc, count: 0)
            }
            let sumG = sumG64.map { Float($0) }, sumGX = (0..<c).map { Float(sumGXc[$0]) * istd[$0] }  // Σg·x̂
            var dx: Tensor? = nil
            if x.requiresGrad {
                let d = Tensor(uninitialized: x.shape, count: x.count, layout: dxLayout)
                if training {
                    // dx = k·(M·g − Σg − x̂·Σgx̂) with k = γ·istd/M: linear in g and x per channel.
                    let k = (0..<c).map { gamma[$0] * istd[$0] / Float(m) }
                    let slope = (0..<c).map { -k[$0] * sumGX[$0] * istd[$0] }
                    grid.affine(pg, px, into: d.heldStorage.pointer, a: k.map { $0 * Float(m) }, b: slope,
                                k: (0..<c).map { -k[$0] * sumG[$0] - slope[$0] * mu[$0] }, mask: mask, types: types)
                } else {
                    grid.affine(pg, nil, into: d.heldStorage.pointer, a: scale, b: nil, k: [Float](repeating: 0, count: c),
                                mask: mask, types: types)
                }
                dx = d
            }
            var grads: [Tensor?] = [dx]
            if weight != nil { grads.append(try local?.0 ?? Tensor(sumGX, shape: [c])) }
            if bias != nil { grads.append(try local?.1 ?? Tensor(sumG, shape: [c])) }
            return grads
        }
    }
}

/// ChannelGrid's sums over each share of a batch (BatchShares), and their totals added share by
/// share. Each operand comes with how many Floats an image takes in it.
private func sumsByShare(_ shares: [Range<Int>], c: Int, s: Int, blocked: Bool, _ u: (UnsafePointer<Float>, Int),
                         _ v: (UnsafePointer<Float>, Int)?, center: [Float], mask: (UnsafePointer<Float>, Int)? = nil,
                         types: UInt32) -> (total: (first: [Double], second: [Double]), parts: [(first: [Double], second: [Double])]) {
    var total = (first: [Double](repeating: 0, count: c), second: [Double](repeating: 0, count: c))
    var parts: [(first: [Double], second: [Double])] = []
    for r in shares {
        let grid = ChannelGrid(n: r.count, c: c, s: s, blocked: blocked), at = r.lowerBound
        let part = grid.sums(u.0 + at * u.1, v.map { $0.0 + at * $0.1 }, center: center, mask: mask.map { $0.0 + at * $0.1 }, types: types)
        for ch in 0..<c {
            total.first[ch] += part.first[ch]
            total.second[ch] += part.second[ch]
        }
        parts.append(part)
    }
    return (total, parts)
}

/// Sums two per-channel lists and a count across processes with `across`, in one call; returns
/// the summed count.
private func sumAcross(_ across: (inout [Double]) throws -> Void, _ a: inout [Double], _ b: inout [Double], count: Int) throws -> Int {
    let c = a.count
    var packed = a + b + [Double(count)]
    try across(&packed)
    guard packed.count == 2 * c + 1 else { throw TensorError("batch_norm", "a synchronised sum came back with \(packed.count) values, not \(2 * c + 1)") }
    a = Array(packed[0..<c])
    b = Array(packed[c..<(2 * c)])
    return Int(exactly: packed[2 * c].rounded()) ?? count
}
