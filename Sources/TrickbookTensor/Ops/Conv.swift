// 2-D convolution (cross-correlation, as in PyTorch) by im2col + sgemm.
//
// x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] → [N, O, OH, OW] with
// OH = (H + 2·ph − dh·(kh − 1) − 1) / sh + 1 (and likewise OW).
// Images are processed in chunks: im2col writes col [K = C·kh·kw, L = nb·OH·OW] (image b owns
// columns b·OH·OW ..< (b+1)·OH·OW), then one sgemm per group gives [O, L].

/// The sizes of one convolution, checked once.
public struct ConvGeometry: Equatable {
    public let n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow: Int
    var ohw: Int { oh * ow }
    var cg: Int { c / groups }
    var og: Int { o / groups }
    /// Rows of col per group.
    var kg: Int { cg * kh * kw }
    /// Multiply-accumulates of the forward pass.
    public var macs: Int { n * o * ohw * kg }

    init(x: [Int], weight: [Int], stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int) throws {
        guard x.count == 4 else { throw TensorError("conv2d", "input must be [N, C, H, W], got shape \(fmt(x))") }
        guard weight.count == 4 else { throw TensorError("conv2d", "weight must be [O, C/groups, kh, kw], got shape \(fmt(weight))") }
        guard groups >= 1 else { throw TensorError("conv2d", "groups must be positive, got \(groups)") }
        guard stride.0 >= 1, stride.1 >= 1 else { throw TensorError("conv2d", "stride must be positive, got \(stride)") }
        guard dilation.0 >= 1, dilation.1 >= 1 else { throw TensorError("conv2d", "dilation must be positive, got \(dilation)") }
        guard padding.0 >= 0, padding.1 >= 0 else { throw TensorError("conv2d", "padding must be non-negative, got \(padding)") }
        (n, c, h, w) = (x[0], x[1], x[2], x[3])
        (o, kh, kw) = (weight[0], weight[2], weight[3])
        guard c % groups == 0, o % groups == 0, weight[1] * groups == c else {
            throw TensorError("conv2d", "input \(fmt(x)) has \(c) channels but weight \(fmt(weight)) with groups = \(groups) expects \(weight[1] * groups) (and \(o) output channels must divide into \(groups) groups)")
        }
        guard kh >= 1, kw >= 1, o >= 1 else { throw TensorError("conv2d", "weight \(fmt(weight)) has an empty kernel") }
        (sh, sw, ph, pw, dh, dw) = (stride.0, stride.1, padding.0, padding.1, dilation.0, dilation.1)
        self.groups = groups
        let effH = dh * (kh - 1) + 1, effW = dw * (kw - 1) + 1
        guard h + 2 * ph >= effH, w + 2 * pw >= effW else {
            throw TensorError("conv2d", "kernel \(kh)x\(kw) (dilation \(dh)x\(dw)) is larger than the padded input \(h + 2 * ph)x\(w + 2 * pw) of shape \(fmt(x))")
        }
        oh = (h + 2 * ph - effH) / sh + 1
        ow = (w + 2 * pw - effW) / sw + 1
    }

    /// Images per chunk: col stays near 32 MiB so that it and the GEMM output stay in memory budget.
    var chunk: Int { Swift.max(1, Swift.min(n, (8 << 20) / Swift.max(1, c * kh * kw * ohw))) }

    /// Fills col [C·kh·kw, nb·OH·OW] from images b0 ..< b0 + nb of x.
    func im2col(_ x: UnsafePointer<Float>, b0: Int, nb: Int, into col: UnsafeMutablePointer<Float>) {
        let l = nb * ohw
        parallelFor(nb * c, grain: 1) { r in
            for bc in r {
                let b = bc / c, ch = bc % c
                let src = x + ((b0 + b) * c + ch) * h * w
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let dst = col + ((ch * kh + ki) * kw + kj) * l + b * ohw
                        let (lo, hi) = validRange(k: kj, d: dw, s: sw, p: pw, size: w, out: ow)
                        for oy in 0..<oh {
                            let iy = oy * sh - ph + ki * dh
                            let row = dst + oy * ow
                            guard iy >= 0 && iy < h && lo < hi else {
                                row.update(repeating: 0, count: ow)
                                continue
                            }
                            if lo > 0 { row.update(repeating: 0, count: lo) }
                            let s = src + iy * w - pw + kj * dw
                            if sw == 1 {
                                (row + lo).update(from: s + lo, count: hi - lo)
                            } else {
                                for ox in lo..<hi { row[ox] = s[ox * sw] }
                            }
                            if hi < ow { (row + hi).update(repeating: 0, count: ow - hi) }
                        }
                    }
                }
            }
        }
    }

    /// Adds col [C·kh·kw, nb·OH·OW] back into images b0 ..< b0 + nb of dx (the adjoint of im2col).
    func col2im(_ col: UnsafePointer<Float>, b0: Int, nb: Int, into dx: UnsafeMutablePointer<Float>) {
        let l = nb * ohw
        parallelFor(nb * c, grain: 1) { r in
            for bc in r {
                let b = bc / c, ch = bc % c
                let dst = dx + ((b0 + b) * c + ch) * h * w
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let src = col + ((ch * kh + ki) * kw + kj) * l + b * ohw
                        let (lo, hi) = validRange(k: kj, d: dw, s: sw, p: pw, size: w, out: ow)
                        guard lo < hi else { continue }
                        for oy in 0..<oh {
                            let iy = oy * sh - ph + ki * dh
                            guard iy >= 0 && iy < h else { continue }
                            let d = dst + iy * w - pw + kj * dw, s = src + oy * ow
                            if sw == 1 {
                                for ox in lo..<hi { d[ox] += s[ox] }
                            } else {
                                for ox in lo..<hi { d[ox * sw] += s[ox] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Output columns ox whose input column ox·s − p + k·d lies inside 0 ..< size.
    @inline(__always)
    private func validRange(k: Int, d: Int, s: Int, p: Int, size: Int, out: Int) -> (Int, Int) {
        let off = k * d - p
        let lo = off >= 0 ? 0 : (-off + s - 1) / s
        let hi = size - off <= 0 ? 0 : Swift.min(out, (size - 1 - off) / s + 1)
        return (Swift.min(lo, out), Swift.max(hi, Swift.min(lo, out)))
    }
}

extension Tensor {
    /// 2-D convolution. `weight` is [O, C/groups, kh, kw]; `bias` is [O] or nil.
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                       dilation: (Int, Int) = (1, 1), groups: Int = 1) throws -> Tensor {
        let geo = try ConvGeometry(x: shape, weight: weight.shape, stride: stride, padding: padding, dilation: dilation, groups: groups)
        if let bias, bias.shape != [geo.o] {
            throw TensorError("conv2d", "bias must have shape [\(geo.o)], got \(fmt(bias.shape))")
        }
        let out = try Tensor(uninitialized: [geo.n, geo.o, geo.oh, geo.ow], op: "conv2d")
        let nb = geo.chunk, l = nb * geo.ohw
        let col = UnsafeMutablePointer<Float>.allocate(capacity: geo.c * geo.kh * geo.kw * l)
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: geo.o * l)
        defer { col.deallocate(); tmp.deallocate() }
        let px = storage.pointer, pw = weight.storage.pointer, po = out.storage.pointer
        for b0 in Swift.stride(from: 0, to: geo.n, by: nb) {
            let cnt = Swift.min(nb, geo.n - b0), lc = cnt * geo.ohw
            geo.im2col(px, b0: b0, nb: cnt, into: col)
            for g in 0..<geo.groups {
                sgemm(m: geo.og, n: lc, k: geo.kg, a: pw + g * geo.og * geo.kg, lda: geo.kg,
                      b: col + g * geo.kg * lc, ldb: lc, c: tmp + g * geo.og * lc, ldc: lc)
            }
            // tmp [O, cnt, OH·OW] → out [b0 + b, O, OH·OW], adding the bias.
            let pb = bias?.storage.pointer
            parallelFor(cnt * geo.o, grain: 4) { r in
                for bo in r {
                    let b = bo / geo.o, oc = bo % geo.o
                    let d = po + ((b0 + b) * geo.o + oc) * geo.ohw, s = tmp + oc * lc + b * geo.ohw
                    if let pb {
                        let v = pb[oc]
                        for i in 0..<geo.ohw { d[i] = s[i] + v }
                    } else {
                        d.update(from: s, count: geo.ohw)
                    }
                }
            }
        }
        let x = self
        var inputs = [x, weight]
        if let bias { inputs.append(bias) }
        return out.recorded("conv2d", inputs) { g, _ in
            let (dx, dw, db) = try conv2dBackward(geo, x: x, weight: weight, gradOut: g,
                                                  needX: x.requiresGrad, needW: weight.requiresGrad, needB: bias?.requiresGrad ?? false)
            return [dx, dw, db]
        }
    }
}

/// Gradients of conv2d: dW = Σ dOut · colᵀ, dCol = Wᵀ · dOut then col2im, dBias = Σ dOut.
func conv2dBackward(_ geo: ConvGeometry, x: Tensor, weight: Tensor, gradOut: Tensor,
                    needX: Bool, needW: Bool, needB: Bool) throws -> (Tensor?, Tensor?, Tensor?) {
    let dx = needX ? Tensor.full(x.shape, 0) : nil
    let dw = needW ? Tensor.full(weight.shape, 0) : nil
    let db = needB ? Tensor.full([geo.o], 0) : nil
    let nb = geo.chunk, l = nb * geo.ohw
    let col = UnsafeMutablePointer<Float>.allocate(capacity: geo.c * geo.kh * geo.kw * l)
    let dT = UnsafeMutablePointer<Float>.allocate(capacity: geo.o * l)
    defer { col.deallocate(); dT.deallocate() }
    let px = x.storage.pointer, pw = weight.storage.pointer, pg = gradOut.storage.pointer
    for b0 in stride(from: 0, to: geo.n, by: nb) {
        let cnt = min(nb, geo.n - b0), lc = cnt * geo.ohw
        // gradOut [b0 + b, O, OH·OW] → dT [O, cnt·OH·OW]
        parallelFor(cnt * geo.o, grain: 4) { r in
            for bo in r {
                let b = bo / geo.o, oc = bo % geo.o
                (dT + oc * lc + b * geo.ohw).update(from: pg + ((b0 + b) * geo.o + oc) * geo.ohw, count: geo.ohw)
            }
        }
        if let db {
            let p = db.storage.pointer
            for oc in 0..<geo.o {
                var s: Float = 0
                let row = dT + oc * lc
                for i in 0..<lc { s += row[i] }
                p[oc] += s
            }
        }
        if let dw {
            geo.im2col(px, b0: b0, nb: cnt, into: col)
            for g in 0..<geo.groups {
                sgemm(transB: true, m: geo.og, n: geo.kg, k: lc, a: dT + g * geo.og * lc, lda: lc,
                      b: col + g * geo.kg * lc, ldb: lc, beta: 1, c: dw.storage.pointer + g * geo.og * geo.kg, ldc: geo.kg)
            }
        }
        if let dx {
            for g in 0..<geo.groups {
                sgemm(transA: true, m: geo.kg, n: lc, k: geo.og, a: pw + g * geo.og * geo.kg, lda: geo.kg,
                      b: dT + g * geo.og * lc, ldb: lc, c: col + g * geo.kg * lc, ldc: lc)
            }
            geo.col2im(col, b0: b0, nb: cnt, into: dx.storage.pointer)
        }
    }
    return (dx, dw, db)
}
