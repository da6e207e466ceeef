// Bilinear resize of [N, C, H, W] with align_corners = false (PyTorch's default):
// source coordinate = (dst + ½)·(in / out) − ½, clamped at 0; the two neighbours are blended.

extension Tensor {
    public func resizeBilinear(height oh: Int, width ow: Int) throws -> Tensor {
        guard rank == 4 else { throw TensorError("resize", "input must be [N, C, H, W], got shape \(fmt(shape))") }
        guard oh >= 1, ow >= 1 else { throw TensorError("resize", "output size must be positive, got \(oh)x\(ow)") }
        let planes = shape[0] * shape[1], h = shape[2], w = shape[3]
        guard h >= 1, w >= 1 else { throw TensorError("resize", "input \(fmt(shape)) has an empty plane") }
        // The output's size is checked before the sampling positions are laid out for it.
        _ = try Memory.elementCount([shape[0], shape[1], oh, ow], op: "resize")
        func taps(_ outN: Int, _ inN: Int) -> [(Int, Int, Float)] {
            let scale = Float(inN) / Float(outN)
            return (0..<outN).map { d in
                let src = Swift.max(0, (Float(d) + 0.5) * scale - 0.5)
                let i0 = Swift.min(Int(src), inN - 1)
                return (i0, Swift.min(i0 + 1, inN - 1), src - Float(i0))
            }
        }
        let ys = taps(oh, h), xs = taps(ow, w)
        let out = try Tensor(uninitialized: [shape[0], shape[1], oh, ow], op: "resize")
        let px = storage.pointer, po = out.storage.pointer
        parallelFor(planes, grain: 1) { r in
            for p in r {
                let src = px + p * h * w, dst = po + p * oh * ow
                for (i, (y0, y1, ly)) in ys.enumerated() {
                    for (j, (x0, x1, lx)) in xs.enumerated() {
                        let top = src[y0 * w + x0] * (1 - lx) + src[y0 * w + x1] * lx
                        let bottom = src[y1 * w + x0] * (1 - lx) + src[y1 * w + x1] * lx
                        dst[i * ow + j] = top * (1 - ly) + bottom * ly
                    }
                }
            }
        }
        let x = self
        return out.recorded("resize", [x]) { g, _ in
            let dx = Tensor.full(x.shape, 0)
            let pd = dx.storage.pointer, pg = g.storage.pointer
            parallelFor(planes, grain: 1) { r in
                for p in r {
                    let d = pd + p * h * w, gs = pg + p * oh * ow
                    for (i, (y0, y1, ly)) in ys.enumerated() {
                        for (j, (x0, x1, lx)) in xs.enumerated() {
                            let v = gs[i * ow + j]
                            d[y0 * w + x0] += v * (1 - ly) * (1 - lx)
                            d[y0 * w + x1] += v * (1 - ly) * lx
                            d[y1 * w + x0] += v * ly * (1 - lx)
                            d[y1 * w + x1] += v * ly * lx
                        }
                    }
                }
            }
            return [dx]
        }
    }
}
