// Batch normalisation over the channel axis of [N, C] or [N, C, H, W].
//
// Training: x̂ = (x − μ_B) / √(σ²_B + ε) with the batch's biased variance; running stats move by
// momentum: r ← (1 − m)·r + m·stat, using the unbiased variance for r_var (as PyTorch does).
// Evaluation: the running stats take the place of the batch's.
// Backward (training): dx = γ/(M·√(σ²+ε)) · (M·g − Σg − x̂·Σ(g·x̂)), dγ = Σ g·x̂, dβ = Σ g.

extension Tensor {
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) throws -> Tensor {
        guard rank == 2 || rank == 4 else {
            throw TensorError("batch_norm", "input must be [N, C] or [N, C, H, W], got shape \(fmt(shape))")
        }
        let n = shape[0], c = shape[1], s = rank == 4 ? shape[2] * shape[3] : 1, m = n * s
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
        var meanBuf = [Float](repeating: 0, count: c), invStd = meanBuf, varBuf = meanBuf
        // A blocked input (a convolution's output) is read and written as it is held: channel ch of
        // image b starts at plane(b, ch) and steps by `step` (16 in nChw16c, 1 when plain).
        let blocked = layout == .blocked16
        let px = blocked ? heldStorage.pointer : storage.pointer, step = blocked ? 16 : 1
        let plane = { (b: Int, ch: Int) -> Int in blocked ? b * c * s + (ch / 16) * 16 * s + ch % 16 : (b * c + ch) * s }
        if training {
            meanBuf.withUnsafeMutableBufferPointer { mb in
                invStd.withUnsafeMutableBufferPointer { ib in varBuf.withUnsafeMutableBufferPointer { vb in
                    guard let mp = mb.baseAddress, let ip = ib.baseAddress, let vp = vb.baseAddress else { return }
                    parallelFor(c, grain: 1) { r in
                        for ch in r {
                            var sum: Double = 0, sq: Double = 0
                            for b in 0..<n {
                                let row = px + plane(b, ch)
                                var ls: Float = 0, lq: Float = 0
                                if step == 1 {
                                    for i in 0..<s { let v = row[i]; ls += v; lq += v * v }
                                } else {
                                    for i in 0..<s { let v = row[i * step]; ls += v; lq += v * v }
                                }
                                sum += Double(ls); sq += Double(lq)
                            }
                            let mu = sum / Double(m)
                            let variance = Swift.max(0, sq / Double(m) - mu * mu)
                            mp[ch] = Float(mu)
                            vp[ch] = Float(variance)
                            ip[ch] = Float(1 / (variance + Double(eps)).squareRoot())
                        }
                    }
                } }
            }
            if let rm = runningMean, let rv = runningVar {
                let pm = rm.storage.pointer, pv = rv.storage.pointer
                for ch in 0..<c {
                    pm[ch] = (1 - momentum) * pm[ch] + momentum * meanBuf[ch]
                    pv[ch] = (1 - momentum) * pv[ch] + momentum * varBuf[ch] * Float(m) / Float(m - 1)
                }
            }
        } else if let rm = runningMean, let rv = runningVar {
            for ch in 0..<c {
                meanBuf[ch] = rm.storage.pointer[ch]
                invStd[ch] = 1 / (rv.storage.pointer[ch] + eps).squareRoot()
            }
        }
        let out = Tensor(shape: shape, storage: Storage(uninitialized: count), layout: blocked ? .blocked16 : .plain)
        let po = out.heldStorage.pointer, pwt = weight?.storage.pointer, pb = bias?.storage.pointer
        let mu = meanBuf, istd = invStd
        parallelFor(n * c, grain: 1) { r in
            for bc in r {
                let ch = bc % c, at = plane(bc / c, ch)
                let scale = istd[ch] * (pwt?[ch] ?? 1), shift = (pb?[ch] ?? 0) - mu[ch] * scale
                let src = px + at, dst = po + at
                if step == 1 {  // kept apart so that it vectorizes
                    for i in 0..<s { dst[i] = src[i] * scale + shift }
                } else {
                    for i in 0..<s { dst[i * step] = src[i * step] * scale + shift }
                }
            }
        }
        let x = self
        var inputs = [x]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return out.recorded("batch_norm", inputs) { g, _ in
            // x and g as held when both are still blocked (as in a ResNet), else both plain.
            let together = blocked && x.layout == .blocked16 && g.layout == .blocked16
            let px = together ? x.heldStorage.pointer : x.storage.pointer
            let pg = together ? g.heldStorage.pointer : g.storage.pointer, step = together ? 16 : 1
            let plane = { (b: Int, ch: Int) -> Int in together ? b * c * s + (ch / 16) * 16 * s + ch % 16 : (b * c + ch) * s }
            // Per channel: Σg and Σg·x̂.
            var sumG = [Float](repeating: 0, count: c), sumGX = [Float](repeating: 0, count: c)
            sumG.withUnsafeMutableBufferPointer { sgb in
                sumGX.withUnsafeMutableBufferPointer { sxb in
                    guard let sg = sgb.baseAddress, let sx = sxb.baseAddress else { return }
                    parallelFor(c, grain: 1) { r in
                        for ch in r {
                            var a: Double = 0, b2: Double = 0
                            for b in 0..<n {
                                let at = plane(b, ch), gr = pg + at, xr = px + at
                                var la: Float = 0, lb: Float = 0
                                for i in 0..<s { la += gr[i * step]; lb += gr[i * step] * (xr[i * step] - mu[ch]) }
                                a += Double(la); b2 += Double(lb)
                            }
                            sg[ch] = Float(a)
                            sx[ch] = Float(b2) * istd[ch]
                        }
                    }
                }
            }
            var dx: Tensor? = nil
            if x.requiresGrad {
                let d = Tensor(shape: x.shape, storage: Storage(uninitialized: x.count), layout: together ? .blocked16 : .plain)
                let pd = d.heldStorage.pointer
                let (sg, sx) = (sumG, sumGX)
                parallelFor(n * c, grain: 1) { r in
                    for bc in r {
                        let ch = bc % c, at = plane(bc / c, ch)
                        let gamma = pwt?[ch] ?? 1
                        let gr = pg + at, xr = px + at, dr = pd + at
                        if training {
                            let k = gamma * istd[ch] / Float(m), mg = sg[ch], mx = sx[ch]
                            for i in 0..<s {
                                let xh = (xr[i * step] - mu[ch]) * istd[ch]
                                dr[i * step] = k * (Float(m) * gr[i * step] - mg - xh * mx)
                            }
                        } else {
                            let k = gamma * istd[ch]
                            for i in 0..<s { dr[i * step] = k * gr[i * step] }
                        }
                    }
                }
                dx = d
            }
            var grads: [Tensor?] = [dx]
            if weight != nil { grads.append(try Tensor(sumGX, shape: [c])) }
            if bias != nil { grads.append(try Tensor(sumG, shape: [c])) }
            return grads
        }
    }
}
