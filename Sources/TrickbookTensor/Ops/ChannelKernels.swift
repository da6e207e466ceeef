// The two per-channel passes batch norm is made of, for plain NCHW and for oneDNN's nChw16c (what a
// convolution leaves): sums over images and positions of each channel, and a per-channel linear
// map of each element. Sums are in a fixed order whatever the thread count.

import CShims

/// Where a [N, C, H·W] tensor's elements are: plain, or nChw16c (C a multiple of 16).
struct ChannelGrid {
    let n, c, s: Int
    let blocked: Bool

    /// Σ_p u and Σ_p u·(v − center[ch]) for each channel ch, over images and positions (v = u when nil).
    /// With a mask, u counts only where the mask is above zero (a fused ReLU's output: its gradient).
    /// Blocked operands may hold BF16: `types` has their bits (TB_U_BF16, TB_V_BF16, TB_MASK_BF16).
    func sums(_ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>?, center: [Float],
              mask: UnsafePointer<Float>? = nil, types: UInt32 = 0) -> (first: [Double], second: [Double]) {
        var first = [Double](repeating: 0, count: c), second = first
        if !blocked {
            // Per channel: each image's positions in Float, the images in Double.
            first.withUnsafeMutableBufferPointer { fb in second.withUnsafeMutableBufferPointer { sb in
                guard let fp = fb.baseAddress, let sp = sb.baseAddress else { return }
                parallelFor(c, grain: 1) { r in
                    for ch in r {
                        let mu = center[ch]
                        for b in 0..<n {
                            let at = (b * c + ch) * s
                            let ur = u + at, vr = (v ?? u) + at
                            var a: Float = 0, q: Float = 0
                            if let mr = mask.map({ $0 + at }) {
                                for i in 0..<s { let x = kept(ur[i], mr[i]); a += x; q += x * (vr[i] - mu) }
                            } else {
                                for i in 0..<s { a += ur[i]; q += ur[i] * (vr[i] - mu) }
                            }
                            fp[ch] += Double(a)
                            sp[ch] += Double(q)
                        }
                    }
                }
            } }
            return (first, second)
        }
        // Blocked: sixteen channels side by side (in C, for AVX-512). Each fixed part of the batch
        // sums its images, one block at a time, sixteen lanes at once; the parts are added in order.
        let blocks = c / 16, parts = partCount(n)
        let partial = UnsafeMutablePointer<Double>.allocate(capacity: Swift.max(1, parts * 2 * c))
        defer { partial.deallocate() }
        partial.initialize(repeating: 0, count: Swift.max(1, parts * 2 * c))
        center.withUnsafeBufferPointer { cb in
            forEachPart(n) { part, images in
                let pf = partial + part * 2 * c
                tb_channel_sums16(u, v, mask, types, cb.baseAddress, Int64(blocks), Int64(s), Int64(images.lowerBound),
                                  Int64(images.upperBound), pf, pf + c)
            }
        }
        for part in 0..<parts {
            for ch in 0..<c { first[ch] += partial[part * 2 * c + ch]; second[ch] += partial[part * 2 * c + c + ch] }
        }
        return (first, second)
    }

    /// out = a[ch]·u + b[ch]·v + k[ch] for every element (v only where b is given). With a mask, u
    /// counts only where the mask is above zero (backward through a fused ReLU); with `relu`, out is
    /// max(out, 0) (forward of one). Bitwise the same as the separate ReLU pass. Blocked operands
    /// may hold BF16 (`types`, as for sums, and TB_OUT_BF16).
    @inline(never)  // inlined into batchNorm it crashed Swift 6.3.1's optimizer (CopyPropagation)
    func affine(_ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>,
                a: [Float], b: [Float]?, k: [Float], mask: UnsafePointer<Float>? = nil, relu: Bool = false,
                types: UInt32 = 0) {
        let v = b == nil ? nil : v
        if !blocked {
            parallelFor(n * c, grain: 1) { r in
                for bc in r {
                    let ch = bc % c, at = bc * s
                    let ac = a[ch], kc = k[ch], bcf = b?[ch] ?? 0
                    let ur = u + at, o = out + at
                    switch (v.map { $0 + at }, mask.map { $0 + at }) {
                    case let (vr?, mr?): for i in 0..<s { o[i] = ac * kept(ur[i], mr[i]) + bcf * vr[i] + kc }
                    case let (vr?, nil): for i in 0..<s { o[i] = ac * ur[i] + bcf * vr[i] + kc }
                    case let (nil, mr?): for i in 0..<s { o[i] = ac * kept(ur[i], mr[i]) + kc }
                    case (nil, nil) where relu: for i in 0..<s { o[i] = Swift.max(ac * ur[i] + kc, 0) }
                    case (nil, nil): for i in 0..<s { o[i] = ac * ur[i] + kc }
                    }
                    if relu, v != nil || mask != nil { for i in 0..<s { o[i] = Swift.max(o[i], 0) } }  // as the C path
                }
            }
            return
        }
        let blocks = c / 16, hasB = b != nil, bs = b ?? k  // bs is read only when b is given
        a.withUnsafeBufferPointer { ab in bs.withUnsafeBufferPointer { bb in k.withUnsafeBufferPointer { kb in
            parallelFor(n * blocks, grain: 1) { r in
                tb_channel_affine16(u, v, mask, out, types, ab.baseAddress, hasB ? bb.baseAddress : nil, kb.baseAddress,
                                    relu ? 1 : 0, Int64(blocks), Int64(s), Int64(r.lowerBound), Int64(r.upperBound))
            }
        } } }
    }
}

/// g where a ReLU let its input through (m, its output, above zero), else 0. Both values are
/// loaded before the choice, so that the loops around it vectorize (a conditional load kept
/// the masked passes scalar: four times slower).
@inline(__always)
func kept(_ g: Float, _ m: Float) -> Float { m > 0 ? g : 0 }
