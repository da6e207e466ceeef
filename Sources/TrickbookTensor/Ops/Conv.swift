import CShims
import Foundation

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
        // Settings far beyond any image keep the geometry's arithmetic from overflowing.
        for (v, what) in [(stride.0, "stride"), (stride.1, "stride"), (padding.0, "padding"), (padding.1, "padding"),
                          (dilation.0, "dilation"), (dilation.1, "dilation"), (weight[2], "kernel"), (weight[3], "kernel")] where v > 1 << 20 {
            throw TensorError("conv2d", "\(what) \(v) is larger than 2^20")
        }
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
        try checkBLASSizes([c * kh * kw, oh * ow, o, h + 2 * ph, w + 2 * pw, n], op: "conv2d", shapes: "input \(fmt(x)) with weight \(fmt(weight))")
    }

    /// A 1×1 convolution at stride 1 without padding: an image is its own col matrix.
    var pointwise: Bool { kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 }

    /// Images per product: enough columns (about 512) for an efficient sgemm, but leaving a group
    /// of images for each part of the batch (not each thread: the grouping changes the order of
    /// the sums, which must not depend on the thread count). With one image the product writes
    /// straight into NCHW. (2048 and 8192 columns measured no faster for the backward.)
    var imagesPerProduct: Int {
        Swift.max(1, Swift.min((512 + ohw - 1) / ohw, n / reductionParts))
    }

    /// Fills col [C·kh·kw, nb·OH·OW] from images b0 ..< b0 + nb of x.
    func im2col(_ x: UnsafePointer<Float>, b0: Int, nb: Int, into col: UnsafeMutablePointer<Float>) {
        let l = nb * ohw
        // At stride 1 with "same" width, each col row is the input plane shifted by one offset:
        // one block copy, then the columns that wrapped around the edge are zeroed.
        let shifted = sh == 1 && sw == 1 && ow == w
        for b in 0..<nb {
            for ch in 0..<c {
                let src = x + ((b0 + b) * c + ch) * h * w
                for ki in 0..<kh {
                    for kj in 0..<kw {
                        let dst = col + ((ch * kh + ki) * kw + kj) * l + b * ohw
                        let (lo, hi) = validRange(k: kj, d: dw, s: sw, p: pw, size: w, out: ow)
                        if shifted {
                            let dy = ki * dh - ph, shift = dy * w + kj * dw - pw
                            let oy0 = Swift.max(0, -dy), oy1 = Swift.max(oy0, Swift.min(oh, h - dy))
                            let start = Swift.max(oy0 * ow, -shift), end = Swift.min(oy1 * ow, h * w - shift)
                            for i in 0..<(oy0 * ow) { dst[i] = 0 }
                            if end > start { (dst + start).update(from: src + start + shift, count: end - start) }
                            for i in (oy1 * ow)..<ohw { dst[i] = 0 }
                            if lo > 0 || hi < ow {
                                for oy in oy0..<oy1 {
                                    let row = dst + oy * ow
                                    for ox in 0..<lo { row[ox] = 0 }
                                    for ox in hi..<ow { row[ox] = 0 }
                                }
                            }
                            continue
                        }
                        for oy in 0..<oh {
                            let iy = oy * sh - ph + ki * dh
                            let row = dst + oy * ow
                            guard iy >= 0 && iy < h && lo < hi else {
                                for ox in 0..<ow { row[ox] = 0 }
                                continue
                            }
                            // Short rows: plain loops beat memmove calls here.
                            for ox in 0..<lo { row[ox] = 0 }
                            let s = src + iy * w - pw + kj * dw
                            if sw == 1 {
                                for ox in lo..<hi { row[ox] = s[ox] }
                            } else {
                                for ox in lo..<hi { row[ox] = s[ox * sw] }
                            }
                            for ox in hi..<ow { row[ox] = 0 }
                        }
                    }
                }
            }
        }
    }

    /// Adds col [C·kh·kw, nb·OH·OW] back into images b0 ..< b0 + nb of dx (the adjoint of im2col).
    func col2im(_ col: UnsafePointer<Float>, b0: Int, nb: Int, into dx: UnsafeMutablePointer<Float>) {
        let l = nb * ohw
        for b in 0..<nb {
            for ch in 0..<c {
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

    /// Runs `body(part, groups of images)` over all groups of `imagesPerProduct` images, split into
    /// `imageGroupParts` fixed parts (see `forEachPart`).
    func forEachImageGroup(_ body: (Int, Range<Int>) -> Void) {
        forEachPart((n + imagesPerProduct - 1) / imagesPerProduct, body)
    }

    /// The number of parts `forEachImageGroup` runs.
    var imageGroupParts: Int { partCount((n + imagesPerProduct - 1) / imagesPerProduct) }

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
        let low = OneDNN.lowPrecision && OneDNN.bf16InHardware
        let x = self
        var inputs = [x, weight]
        if let bias { inputs.append(bias) }
        let backward: (Tensor, Tensor) throws -> [Tensor?] = { g, _ in
            let (dx, dw, db) = try conv2dBackward(geo, x: x, weight: weight, gradOut: g, needX: x.requiresGrad,
                                                  needW: weight.requiresGrad, needB: bias?.requiresGrad ?? false, low: low)
            return [dx, dw, db]
        }
        if let shares = BatchShares.of(geo.n), !low {
            return try conv2dInShares(shares, weight: weight, bias: bias, stride: stride, padding: padding,
                                      dilation: dilation, groups: groups, inputs: inputs)
        }
        // A large batch runs in slices of about 8 GFLOP (a tenth of a second here), with
        // Ctrl-C checked between them: one huge convolution must not hold the prompt for minutes.
        let flopsPerImage = 2 * Double(geo.o) * Double(geo.ohw) * Double(geo.kg)
        let slice = Swift.max(1, Swift.min(geo.n, Int(Swift.min(Double(geo.n), 8e9 / Swift.max(1, flopsPerImage)))))
        // The common case, through oneDNN in one call: the output stays in its layout.
        if slice == geo.n, let c = OneDNN.conv(geo, bias: bias != nil, low: low) {
            return try OneDNN.forward(c, geo, x: x, weight: weight, bias: bias).recorded("conv2d", inputs, backward)
        }
        let out = try Tensor(uninitialized: [geo.n, geo.o, geo.oh, geo.ow], op: "conv2d")
        let inSize = geo.c * geo.h * geo.w, outSize = geo.o * geo.ohw
        for b0 in Swift.stride(from: 0, to: geo.n, by: slice) {
            if b0 > 0 { try Interruption.check("conv2d") }
            let part = slice == geo.n ? geo : try ConvGeometry(
                x: [Swift.min(slice, geo.n - b0), geo.c, geo.h, geo.w], weight: weight.shape, stride: stride,
                padding: padding, dilation: dilation, groups: groups)
            let (px, po) = (storage.pointer + b0 * inSize, out.storage.pointer + b0 * outSize)
            if let c = OneDNN.conv(part, bias: bias != nil, low: low) {
                try OneDNN.forward(c, part, x: px, weight: weight.storage.pointer, bias: bias?.storage.pointer, out: po)
            } else {
                conv2dForward(part, x: px, weight: weight.storage.pointer, bias: bias?.storage.pointer, out: po)
            }
        }
        return out.recorded("conv2d", inputs, backward)
    }
}

extension Tensor {
    /// conv2d as ranks take it (see BatchShares): each share of the batch forward and backward on
    /// its own, the shares' weight and bias gradients added in order.
    private func conv2dInShares(_ shares: [Range<Int>], weight: Tensor, bias: Tensor?, stride: (Int, Int),
                                padding: (Int, Int), dilation: (Int, Int), groups: Int, inputs: [Tensor]) throws -> Tensor {
        let x = self
        return try inShares(shares, op: "conv2d", inputs: inputs) {
            try $0.conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
        } backward: { part, g in
            let geo = try ConvGeometry(x: part.shape, weight: weight.shape, stride: stride, padding: padding,
                                       dilation: dilation, groups: groups)
            return try conv2dBackward(geo, x: part, weight: weight, gradOut: g, needX: x.requiresGrad,
                                      needW: weight.requiresGrad, needB: bias?.requiresGrad ?? false)
        }
    }

    /// For inference without gradients: a convolution and the batch norm after it (running
    /// statistics: y = a·(conv + b − mean) + β, a = γ/√(var + ε)) as one oneDNN convolution, the
    /// affine map folded into its weights (w·a) and bias, and the ReLU after it applied as the
    /// output is stored when `relu` is set (oneDNN's ReLU turns NaN into 0 where the layers keep
    /// it). nil where that path does not apply (no oneDNN, a batch large enough to be sliced,
    /// gradients recorded): the caller runs the layers one by one.
    public func conv2dFoldingBatchNorm(weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                                       groups: Int, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor,
                                       eps: Float, relu: Bool) throws -> Tensor? {
        guard !GradMode.enabled else { return nil }
        let geo = try ConvGeometry(x: shape, weight: weight.shape, stride: stride, padding: padding, dilation: (1, 1),
                                   groups: groups)
        let o = geo.o
        guard [gamma, beta, mean, variance].allSatisfy({ $0.shape == [o] }), bias?.shape ?? [o] == [o], eps > 0,
              2 * Double(o) * Double(geo.ohw) * Double(geo.kg) * Double(geo.n) <= 8e9 else { return nil }
        let low = OneDNN.lowPrecision && OneDNN.bf16InHardware
        guard let c = OneDNN.conv(geo, bias: true, low: low, relu: relu) else { return nil }
        let pg = gamma.storage.pointer, pb = beta.storage.pointer, pm = mean.storage.pointer, pv = variance.storage.pointer
        let scale = (0..<o).map { pg[$0] / (pv[$0] + eps).squareRoot() }
        let folded = Tensor(uninitialized: weight.shape, count: weight.count, layout: .plain)
        let perChannel = weight.count / o, pw = weight.storage.pointer, pf = folded.storage.pointer
        parallelFor(o, grain: 16) { r in
            for ch in r {
                let a = scale[ch], at = ch * perChannel
                for i in 0..<perChannel { pf[at + i] = pw[at + i] * a }
            }
        }
        let b0 = bias?.storage.pointer
        let shift = try Tensor((0..<o).map { scale[$0] * ((b0?[$0] ?? 0) - pm[$0]) + pb[$0] }, shape: [o])
        return try OneDNN.forward(c, geo, x: self, weight: folded, bias: shift)
    }
}

/// The forward pass on raw buffers: x [N, C, H, W] → out [N, O, OH, OW].
func conv2dForward(_ geo: ConvGeometry, x px: UnsafePointer<Float>, weight pw: UnsafePointer<Float>,
                   bias pb: UnsafePointer<Float>?, out po: UnsafeMutablePointer<Float>) {
    if DirectConv.applies(geo) {
        DirectConv.forward(geo, x: px, weight: pw, bias: pb, out: po)
        return
    }
    let nb = geo.imagesPerProduct, k = geo.c * geo.kh * geo.kw
    let imageSize = geo.c * geo.h * geo.w, outSize = geo.o * geo.ohw
    geo.forEachImageGroup { _, groups in
        let colBuffer = Scratch(geo.pointwise && nb == 1 ? 0 : k * nb * geo.ohw), col = colBuffer.pointer
        let tmpBuffer = Scratch(nb == 1 ? 0 : geo.o * nb * geo.ohw), tmp = tmpBuffer.pointer
        defer { withExtendedLifetime((colBuffer, tmpBuffer)) {} }
        for group in groups {
            let b0 = group * nb, cnt = min(nb, geo.n - b0), lc = cnt * geo.ohw
            let src: UnsafePointer<Float>
            if geo.pointwise && cnt == 1 {
                src = px + b0 * imageSize
            } else {
                geo.im2col(px, b0: b0, nb: cnt, into: col)
                src = UnsafePointer(col)
            }
            let dst = cnt == 1 ? po + b0 * outSize : tmp
            for g in 0..<geo.groups {
                sgemm(m: geo.og, n: lc, k: geo.kg, a: pw + g * geo.og * geo.kg, lda: geo.kg,
                      b: src + g * geo.kg * lc, ldb: lc, c: dst + g * geo.og * lc, ldc: lc)
            }
            // [O, cnt, OH·OW] → [b0 + b, O, OH·OW], adding the bias.
            for b in 0..<cnt {
                for oc in 0..<geo.o {
                    let d = po + (b0 + b) * outSize + oc * geo.ohw
                    let v = pb?[oc] ?? 0
                    if cnt == 1 {
                        if pb != nil { for i in 0..<geo.ohw { d[i] += v } }
                    } else {
                        let s = tmp + oc * lc + b * geo.ohw
                        for i in 0..<geo.ohw { d[i] = s[i] + v }
                    }
                }
            }
        }
    }
}

/// Gradients of conv2d. dW and dBias: the direct kernels where they apply, else per group of
/// images dW += dOut · colᵀ, dBias += Σ dOut. dx at stride 1 is itself a convolution (dOut with
/// the kernel flipped and its channels swapped, padding d·(k − 1) − p); at other strides
/// dCol = Wᵀ · dOut, then col2im.
func conv2dBackward(_ geo: ConvGeometry, x: Tensor, weight: Tensor, gradOut: Tensor,
                    needX: Bool, needW: Bool, needB: Bool, low: Bool = false) throws -> (Tensor?, Tensor?, Tensor?) {
    if let c = OneDNN.conv(geo, bias: needB, low: low) {
        var dx: Tensor?, dw: Tensor?, db: Tensor?
        if needX { dx = try OneDNN.backwardData(c, geo, gradOut: gradOut, weight: weight) }
        if needW || needB {
            // Both come from one pass: an unwanted dW goes to scratch.
            let w = try Tensor(uninitialized: weight.shape, op: "conv2d")
            let b = needB ? try Tensor(uninitialized: [geo.o], op: "conv2d") : nil
            try OneDNN.backwardWeights(c, geo, x: x, gradOut: gradOut, dw: w.storage.pointer, db: b?.storage.pointer)
            (dw, db) = (needW ? w : nil, b)
        }
        return (dx, dw, db)
    }
    let tp = (geo.dh * (geo.kh - 1) - geo.ph, geo.dw * (geo.kw - 1) - geo.pw)
    let dxByConv = needX && geo.sh == 1 && geo.sw == 1 && tp.0 >= 0 && tp.1 >= 0
    var dx: Tensor?, dw: Tensor?, db: Tensor?
    if DirectConv.applies(geo) && (needW || needB) {
        (dw, db) = DirectConv.weightGrad(geo, x: x.storage.pointer, gradOut: gradOut.storage.pointer, needW: needW, needB: needB)
        if needX && !dxByConv { dx = gemmBackward(geo, x: x, weight: weight, gradOut: gradOut, needX: true, needW: false, needB: false).0 }
    } else {
        (dx, dw, db) = gemmBackward(geo, x: x, weight: weight, gradOut: gradOut, needX: needX && !dxByConv, needW: needW, needB: needB)
    }
    if dxByConv { dx = try flippedConvGrad(geo, weight: weight, gradOut: gradOut, padding: tp) }
    return (dx, dw, db)
}

/// The im2col + sgemm backward. Each part of the batch accumulates dW and dBias in its own buffers.
func gemmBackward(_ geo: ConvGeometry, x: Tensor, weight: Tensor, gradOut: Tensor,
                  needX: Bool, needW: Bool, needB: Bool) -> (Tensor?, Tensor?, Tensor?) {
    let dx = needX ? Tensor.full(x.shape, 0) : nil
    let nb = geo.imagesPerProduct, k = geo.c * geo.kh * geo.kw
    let imageSize = geo.c * geo.h * geo.w, outSize = geo.o * geo.ohw
    let partials = PartialSums(chunks: geo.imageGroupParts, w: needW ? weight.count : 0, b: needB ? geo.o : 0)
    let px = x.storage.pointer, pw = weight.storage.pointer, pg = gradOut.storage.pointer
    geo.forEachImageGroup { chunk, groups in
        let myW = needW ? partials.w(chunk) : nil, myB = needB ? partials.b(chunk) : nil
        let direct = geo.pointwise && nb == 1
        let colBuffer = Scratch(direct ? 0 : k * nb * geo.ohw), col = colBuffer.pointer
        let dTBuffer = Scratch(nb == 1 ? 0 : geo.o * nb * geo.ohw), dT = dTBuffer.pointer
        defer { withExtendedLifetime((colBuffer, dTBuffer)) {} }
        for group in groups {
            let b0 = group * nb, cnt = Swift.min(nb, geo.n - b0), lc = cnt * geo.ohw
            // dOut for these images as [O, cnt·OH·OW]
            let gsrc: UnsafePointer<Float>
            if cnt == 1 {
                gsrc = UnsafePointer(pg + b0 * outSize)
            } else {
                for b in 0..<cnt {
                    for oc in 0..<geo.o { (dT + oc * lc + b * geo.ohw).update(from: pg + (b0 + b) * outSize + oc * geo.ohw, count: geo.ohw) }
                }
                gsrc = UnsafePointer(dT)
            }
            if let myB {
                for oc in 0..<geo.o {
                    var s: Float = 0
                    let row = gsrc + oc * lc
                    for i in 0..<lc { s += row[i] }
                    myB[oc] += s
                }
            }
            let pointwiseImage = geo.pointwise && cnt == 1
            if let myW {
                let colp: UnsafePointer<Float>
                if pointwiseImage {
                    colp = UnsafePointer(px + b0 * imageSize)
                } else {
                    geo.im2col(px, b0: b0, nb: cnt, into: col)
                    colp = UnsafePointer(col)
                }
                for g in 0..<geo.groups {
                    sgemm(transB: true, m: geo.og, n: geo.kg, k: lc, a: gsrc + g * geo.og * lc, lda: lc,
                          b: colp + g * geo.kg * lc, ldb: lc, beta: 1, c: myW + g * geo.og * geo.kg, ldc: geo.kg)
                }
            }
            if let dx {
                let target = pointwiseImage ? dx.storage.pointer + b0 * imageSize : col
                for g in 0..<geo.groups {
                    sgemm(transA: true, m: geo.kg, n: lc, k: geo.og, a: pw + g * geo.og * geo.kg, lda: geo.kg,
                          b: gsrc + g * geo.og * lc, ldb: lc, c: target + g * geo.kg * lc, ldc: lc)
                }
                if !pointwiseImage { geo.col2im(col, b0: b0, nb: cnt, into: dx.storage.pointer) }
            }
        }
    }
    let (dw, db) = partials.totals(weight: needW ? weight.shape : nil, bias: needB ? [geo.o] : nil)
    return (dx, dw, db)
}

/// dx at stride 1: dOut [N, O, OH, OW] convolved with W' [C, O/groups, kh, kw] at `padding`.
func flippedConvGrad(_ geo: ConvGeometry, weight: Tensor, gradOut: Tensor, padding: (Int, Int)) throws -> Tensor {
    let pw = weight.storage.pointer
    // W' [C, O/groups, kh, kw]: W'[g·cg + ci][oc][i][j] = W[g·og + oc][ci][kh − 1 − i][kw − 1 − j]
    let kk = geo.kh * geo.kw
    let flipped = UnsafeMutablePointer<Float>.allocate(capacity: weight.count)
    defer { flipped.deallocate() }
    for g in 0..<geo.groups { for oc in 0..<geo.og { for ci in 0..<geo.cg {
        let src = pw + ((g * geo.og + oc) * geo.cg + ci) * kk, dst = flipped + ((g * geo.cg + ci) * geo.og + oc) * kk
        for i in 0..<kk { dst[kk - 1 - i] = src[i] }
    } } }
    let dx = Tensor(shape: [geo.n, geo.c, geo.h, geo.w], storage: Storage(uninitialized: geo.n * geo.c * geo.h * geo.w))
    let back = try ConvGeometry(x: [geo.n, geo.o, geo.oh, geo.ow], weight: [geo.c, geo.og, geo.kh, geo.kw], stride: (1, 1),
                                padding: padding, dilation: (geo.dh, geo.dw), groups: geo.groups)
    conv2dForward(back, x: gradOut.storage.pointer, weight: flipped, bias: nil, out: dx.storage.pointer)
    return dx
}

/// The AVX-512 direct kernels of CShims/tb_conv.c, for groups = 1 and a multiple of 16 output channels.
enum DirectConv {
    static let available = tb_conv_direct_available() != 0
    /// Tests turn this off (for their own task only) to check the im2col path on the same machine.
    @TaskLocal static var enabled = true

    static func applies(_ geo: ConvGeometry) -> Bool {
        enabled && available && geo.groups == 1 && geo.o % 16 == 0 && geo.o > 0 && geo.kh * geo.kw > 1  // 1×1 is a plain product: sgemm wins
    }

    /// weight [O, K] → [O/16][K][16]
    static func pack(_ w: UnsafePointer<Float>, o: Int, k: Int, into p: UnsafeMutablePointer<Float>) {
        for ob in 0..<(o / 16) { for kk in 0..<k { for j in 0..<16 { p[(ob * k + kk) * 16 + j] = w[(ob * 16 + j) * k + kk] } } }
    }

    /// Copies image b into the interior of a zero-bordered [C, H + 2ph, W + 2pw] buffer.
    static func pad(_ geo: ConvGeometry, _ x: UnsafePointer<Float>, image b: Int, into p: UnsafeMutablePointer<Float>) {
        let hp = geo.h + 2 * geo.ph, wp = geo.w + 2 * geo.pw
        for ch in 0..<geo.c {
            let src = x + (b * geo.c + ch) * geo.h * geo.w
            let dst = p + ch * hp * wp + geo.ph * wp + geo.pw
            for y in 0..<geo.h { (dst + y * wp).update(from: src + y * geo.w, count: geo.w) }
        }
    }

    static func forward(_ geo: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
        let k = geo.c * geo.kh * geo.kw, hp = geo.h + 2 * geo.ph, wp = geo.w + 2 * geo.pw
        let packed = Scratch(geo.o * k)
        pack(weight, o: geo.o, k: k, into: packed.pointer)
        parallelFor(geo.n) { r in
            let padded = Scratch(geo.c * hp * wp)
            padded.pointer.initialize(repeating: 0, count: padded.count)
            for b in r {
                pad(geo, x, image: b, into: padded.pointer)
                tb_conv_direct_forward(padded.pointer, Int32(geo.c), Int32(hp), Int32(wp), packed.pointer, Int32(geo.o),
                                       Int32(geo.kh), Int32(geo.kw), Int32(geo.sh), Int32(geo.sw), Int32(geo.dh), Int32(geo.dw),
                                       bias, out + b * geo.o * geo.ohw, Int32(geo.oh), Int32(geo.ow))
            }
        }
        withExtendedLifetime(packed) {}
    }

    /// dW and dBias, each part of the batch into its own partial sums; dW comes back as [O, K].
    static func weightGrad(_ geo: ConvGeometry, x: UnsafePointer<Float>, gradOut: UnsafePointer<Float>,
                           needW: Bool, needB: Bool) -> (Tensor?, Tensor?) {
        let k = geo.c * geo.kh * geo.kw, hp = geo.h + 2 * geo.ph, wp = geo.w + 2 * geo.pw, ohw = geo.ohw
        let partials = PartialSums(chunks: partCount(geo.n), w: needW ? geo.o * k : 0, b: needB ? geo.o : 0)
        forEachPart(geo.n) { chunk, r in
            let padded = Scratch(needW ? geo.c * hp * wp : 0), gT = Scratch(needW ? geo.o * ohw : 0)
            padded.pointer.initialize(repeating: 0, count: padded.count)
            for b in r {
                let g = gradOut + b * geo.o * ohw
                if needB {
                    let myB = partials.b(chunk)
                    for oc in 0..<geo.o { var s: Float = 0; for i in 0..<ohw { s += g[oc * ohw + i] }; myB[oc] += s }
                }
                guard needW else { continue }
                pad(geo, x, image: b, into: padded.pointer)
                // dOut [O, OH·OW] → [O/16][OH·OW][16]
                let t = gT.pointer
                for ob in 0..<(geo.o / 16) { for j in 0..<16 { let src = g + (ob * 16 + j) * ohw; for i in 0..<ohw { t[(ob * ohw + i) * 16 + j] = src[i] } } }
                tb_conv_direct_weight_grad(padded.pointer, Int32(geo.c), Int32(hp), Int32(wp), t, Int32(geo.o),
                                           Int32(geo.kh), Int32(geo.kw), Int32(geo.sh), Int32(geo.sw), Int32(geo.dh), Int32(geo.dw),
                                           Int32(geo.oh), Int32(geo.ow), partials.w(chunk))
            }
        }
        let (packed, db) = partials.totals(weight: needW ? [geo.o * k] : nil, bias: needB ? [geo.o] : nil)
        guard let packed else { return (nil, db) }
        // [O/16][K][16] → [O, K]
        let dw = Tensor(shape: [geo.o, geo.c, geo.kh, geo.kw], storage: Storage(uninitialized: geo.o * k))
        let p = packed.storage.pointer, d = dw.storage.pointer
        for ob in 0..<(geo.o / 16) { for kk in 0..<k { for j in 0..<16 { d[(ob * 16 + j) * k + kk] = p[(ob * k + kk) * 16 + j] } } }
        return (dw, db)
    }
}

/// Per-chunk accumulators for a weight and a bias gradient, summed once the chunks are done.
final class PartialSums {
    private let buffer: Scratch
    private let wCount: Int, bCount: Int, chunks: Int

    init(chunks: Int, w: Int, b: Int) {
        (self.chunks, wCount, bCount) = (chunks, w, b)
        buffer = Scratch(chunks * (w + b))
        buffer.pointer.initialize(repeating: 0, count: buffer.count)
    }

    func w(_ chunk: Int) -> UnsafeMutablePointer<Float> { buffer.pointer + chunk * (wCount + bCount) }
    func b(_ chunk: Int) -> UnsafeMutablePointer<Float> { buffer.pointer + chunk * (wCount + bCount) + wCount }

    /// The sums over chunks, as tensors of the given shapes (nil where not asked for).
    func totals(weight: [Int]?, bias: [Int]?) -> (Tensor?, Tensor?) {
        func total(_ shape: [Int]?, _ part: (Int) -> UnsafeMutablePointer<Float>, _ n: Int) -> Tensor? {
            guard let shape else { return nil }
            let t = Tensor.full(shape, 0), p = t.storage.pointer
            for c in 0..<chunks { let s = part(c); for i in 0..<n { p[i] += s[i] } }
            return t
        }
        return (total(weight, w, wCount), total(bias, b, bCount))
    }
}
