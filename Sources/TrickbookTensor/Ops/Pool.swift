// Pooling over [N, C, H, W], one (n, c) plane at a time, with PyTorch's size rules:
// out = ⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1 (⌈ ⌉ in ceil mode, where a last window that would start
// inside the right padding is dropped).

import CShims

struct PoolGeometry {
    let n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow: Int
    var planes: Int { n * c }

    /// The in-image positions (iy · w + ix) of output (oy, ox)'s window, row by row.
    @inline(__always)
    func forEachInWindow(_ oy: Int, _ ox: Int, _ body: (Int) -> Void) {
        for ki in 0..<kh {
            let iy = oy * sh - ph + ki * dh
            guard iy >= 0 && iy < h else { continue }
            for kj in 0..<kw {
                let ix = ox * sw - pw + kj * dw
                guard ix >= 0 && ix < w else { continue }
                body(iy * w + ix)
            }
        }
    }

    init(_ op: String, x: [Int], kernel: (Int, Int), stride: (Int, Int)?, padding: (Int, Int), dilation: (Int, Int) = (1, 1), ceilMode: Bool) throws {
        guard x.count == 4 else { throw TensorError(op, "input must be [N, C, H, W], got shape \(fmt(x))") }
        let s = stride ?? kernel
        // Settings far beyond any image keep the arithmetic below from overflowing.
        for v in [kernel.0, kernel.1, s.0, s.1, padding.0, padding.1, dilation.0, dilation.1] where abs(v) > 1 << 20 {
            throw TensorError(op, "kernel, stride, padding and dilation must be at most 2^20, got \(v)")
        }
        guard kernel.0 >= 1, kernel.1 >= 1 else { throw TensorError(op, "kernel size must be positive, got \(kernel)") }
        guard s.0 >= 1, s.1 >= 1 else { throw TensorError(op, "stride must be positive, got \(s)") }
        guard dilation.0 >= 1, dilation.1 >= 1 else { throw TensorError(op, "dilation must be positive, got \(dilation)") }
        guard padding.0 >= 0, padding.1 >= 0, padding.0 * 2 <= kernel.0, padding.1 * 2 <= kernel.1 else {
            throw TensorError(op, "padding \(padding) must be non-negative and at most half the kernel \(kernel)")
        }
        (n, c, h, w) = (x[0], x[1], x[2], x[3])
        (kh, kw, sh, sw, ph, pw, dh, dw) = (kernel.0, kernel.1, s.0, s.1, padding.0, padding.1, dilation.0, dilation.1)
        func outSize(_ size: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int) -> Int {
            let span = size + 2 * p - d * (k - 1) - 1
            guard span >= 0 else { return 0 }
            var o = (ceilMode ? (span + s - 1) / s : span / s) + 1
            if ceilMode && (o - 1) * s >= size + p { o -= 1 }
            return o
        }
        oh = outSize(h, kh, sh, ph, dh)
        ow = outSize(w, kw, sw, pw, dw)
        guard oh >= 1, ow >= 1 else {
            throw TensorError(op, "input \(fmt(x)) is too small for kernel \(kernel) with padding \(padding): the output would be \(oh)x\(ow)")
        }
    }
}

extension Tensor {
    /// Max pooling. The gradient goes to the first maximum of each window (or its first NaN).
    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                          dilation: (Int, Int) = (1, 1), ceilMode: Bool = false) throws -> Tensor {
        let g = try PoolGeometry("max_pool2d", x: shape, kernel: kernel, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
        try checkBLASSizes([g.h * g.w], op: "max_pool2d", shapes: "input \(fmt(shape))")  // argmax indices are 32-bit
        if layout.isBlocked { return try maxPool2dBlocked(g) }
        let out = try Tensor(uninitialized: [g.n, g.c, g.oh, g.ow], op: "max_pool2d")
        let argmax = UnsafeMutablePointer<Int32>.allocate(capacity: out.count)
        let px = storage.pointer, po = out.storage.pointer
        parallelFor(g.planes, grain: 1) { r in
            for plane in r {
                let src = px + plane * g.h * g.w, base = plane * g.oh * g.ow
                for oy in 0..<g.oh {
                    for ox in 0..<g.ow {
                        var best = -Float.infinity, at = -1
                        g.forEachInWindow(oy, ox) { i in
                            let v = src[i]
                            if v > best || (v != v && best == best) || at < 0 { best = v; at = i }  // the first NaN stays
                        }
                        po[base + oy * g.ow + ox] = best
                        argmax[base + oy * g.ow + ox] = Int32(at)
                    }
                }
            }
        }
        let x = self
        let keep = ArgmaxBuffer(argmax)
        return out.recorded("max_pool2d", [x]) { grad, _ in
            let dx = Tensor.full(x.shape, 0)
            let pd = dx.storage.pointer, pg = grad.storage.pointer, am = keep.pointer
            parallelFor(g.planes, grain: 1) { r in
                for plane in r {
                    let d = pd + plane * g.h * g.w, base = plane * g.oh * g.ow
                    for i in 0..<(g.oh * g.ow) where am[base + i] >= 0 { d[Int(am[base + i])] += pg[base + i] }
                }
            }
            return [dx]
        }
    }

    /// Average pooling. With `countIncludePad` the divisor counts padding inside the window, as in PyTorch.
    public func avgPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0),
                          ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
        let g = try PoolGeometry("avg_pool2d", x: shape, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        // One window per output position: clipped bounds and divisor, shared by both passes.
        var windows: [(y0: Int, y1: Int, x0: Int, x1: Int, scale: Float)] = []
        windows.reserveCapacity(g.oh * g.ow)
        for oy in 0..<g.oh {
            for ox in 0..<g.ow {
                var y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw
                var y1 = Swift.min(y0 + g.kh, g.h + g.ph), x1 = Swift.min(x0 + g.kw, g.w + g.pw)
                let poolSize = (y1 - y0) * (x1 - x0)
                y0 = Swift.max(y0, 0); x0 = Swift.max(x0, 0); y1 = Swift.min(y1, g.h); x1 = Swift.min(x1, g.w)
                let valid = Swift.max(0, y1 - y0) * Swift.max(0, x1 - x0)
                let divisor = countIncludePad ? poolSize : valid
                windows.append((y0, y1, x0, x1, valid == 0 ? 0 : 1 / Float(divisor)))
            }
        }
        let out = try Tensor(uninitialized: [g.n, g.c, g.oh, g.ow], op: "avg_pool2d")
        let px = storage.pointer, po = out.storage.pointer
        parallelFor(g.planes, grain: 1) { r in
            for plane in r {
                let src = px + plane * g.h * g.w, dst = po + plane * g.oh * g.ow
                for (i, win) in windows.enumerated() {
                    var s: Float = 0
                    if win.y0 < win.y1 { for y in win.y0..<win.y1 { for x in win.x0..<Swift.max(win.x0, win.x1) { s += src[y * g.w + x] } } }
                    dst[i] = s * win.scale
                }
            }
        }
        let x = self
        return out.recorded("avg_pool2d", [x]) { grad, _ in
            let dx = Tensor.full(x.shape, 0)
            let pd = dx.storage.pointer, pg = grad.storage.pointer
            parallelFor(g.planes, grain: 1) { r in
                for plane in r {
                    let d = pd + plane * g.h * g.w, gs = pg + plane * g.oh * g.ow
                    for (i, win) in windows.enumerated() {
                        let v = gs[i] * win.scale
                        if win.y0 < win.y1 { for y in win.y0..<win.y1 { for x in win.x0..<Swift.max(win.x0, win.x1) { d[y * g.w + x] += v } } }
                    }
                }
            }
            return [dx]
        }
    }

    /// Adaptive average pooling to `output` size: bin i covers ⌊i·H/OH⌋ ..< ⌈(i+1)·H/OH⌉.
    public func adaptiveAvgPool2d(_ output: (Int, Int)) throws -> Tensor {
        guard rank == 4 else { throw TensorError("adaptive_avg_pool2d", "input must be [N, C, H, W], got shape \(fmt(shape))") }
        let (oh, ow) = output
        guard oh >= 1, ow >= 1 else { throw TensorError("adaptive_avg_pool2d", "output size must be positive, got \(output)") }
        let n = shape[0], c = shape[1], h = shape[2], w = shape[3]
        guard h >= 1, w >= 1 else { throw TensorError("adaptive_avg_pool2d", "input \(fmt(shape)) has an empty plane") }
        let ys = (0..<oh).map { ($0 * h / oh, (($0 + 1) * h + oh - 1) / oh) }
        let xs = (0..<ow).map { ($0 * w / ow, (($0 + 1) * w + ow - 1) / ow) }
        let out = try Tensor(uninitialized: [n, c, oh, ow], op: "adaptive_avg_pool2d")
        let px = storage.pointer, po = out.storage.pointer
        parallelFor(n * c, grain: 1) { r in
            for plane in r {
                let src = px + plane * h * w, dst = po + plane * oh * ow
                for (i, (y0, y1)) in ys.enumerated() {
                    for (j, (x0, x1)) in xs.enumerated() {
                        var s: Float = 0
                        for y in y0..<y1 { for x in x0..<x1 { s += src[y * w + x] } }
                        dst[i * ow + j] = s / Float((y1 - y0) * (x1 - x0))
                    }
                }
            }
        }
        let x = self
        return out.recorded("adaptive_avg_pool2d", [x]) { grad, _ in
            let dx = Tensor.full(x.shape, 0)
            let pd = dx.storage.pointer, pg = grad.storage.pointer
            parallelFor(n * c, grain: 1) { r in
                for plane in r {
                    let d = pd + plane * h * w, gs = pg + plane * oh * ow
                    for (i, (y0, y1)) in ys.enumerated() {
                        for (j, (x0, x1)) in xs.enumerated() {
                            let v = gs[i * ow + j] / Float((y1 - y0) * (x1 - x0))
                            for y in y0..<y1 { for x in x0..<x1 { d[y * w + x] += v } }
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// Mean over each plane: [N, C, H, W] → [N, C, 1, 1]. A convolution's blocked output (FP32 or
    /// BF16) is read as it is held and its gradient is given back blocked (FP32), so that the last
    /// stage's backward stays in oneDNN's layout; the sums, in Double and plane order, are the same
    /// whichever way the input is held.
    public func globalAvgPool2d() throws -> Tensor {
        guard rank == 4 else { throw TensorError("global_avg_pool2d", "input must be [N, C, H, W], got shape \(fmt(shape))") }
        let n = shape[0], c = shape[1], s = shape[2] * shape[3]
        guard s > 0 else { throw TensorError("global_avg_pool2d", "input \(fmt(shape)) has an empty plane") }
        let out = try Tensor(uninitialized: [n, c, 1, 1], op: "global_avg_pool2d")
        let po = out.storage.pointer, held = layout, blocked = held.isBlocked, cb = c / 16
        let raw = UnsafeRawPointer(blocked ? heldStorage.pointer : storage.pointer)
        parallelFor(blocked ? n * cb : n * c, grain: 16) { r in
            var sums = [Double](repeating: 0, count: 16)
            for unit in r {
                if blocked {  // sixteen channels' planes, interleaved
                    for j in 0..<16 { sums[j] = 0 }
                    for i in 0..<s { for j in 0..<16 { sums[j] += Double(held.load(raw, (unit * s + i) * 16 + j)) } }
                    let b = unit / cb, c0 = unit % cb * 16
                    for j in 0..<16 { po[b * c + c0 + j] = Float(sums[j] / Double(s)) }
                } else {
                    var sum: Double = 0
                    for i in 0..<s { sum += Double(held.load(raw, unit * s + i)) }
                    po[unit] = Float(sum / Double(s))
                }
            }
        }
        let x = self
        return out.recorded("global_avg_pool2d", [x]) { g, _ in
            let dx = Tensor(uninitialized: x.shape, count: x.count, layout: blocked ? .blocked16 : .plain)
            let pg = g.storage.pointer, pd = dx.heldStorage.pointer
            parallelFor(n * c, grain: 16) { r in
                for plane in r {
                    let v = pg[plane] / Float(s)
                    if blocked {
                        let b = plane / c, ch = plane % c, base = ((b * cb + ch / 16) * s) * 16 + ch % 16
                        for i in 0..<s { pd[base + i * 16] = v }
                    } else {
                        (pd + plane * s).update(repeating: v, count: s)
                    }
                }
            }
            return [dx]
        }
    }
}

/// Owns the argmax indices of a max-pool forward until its backward is gone.
final class ArgmaxBuffer {
    let pointer: UnsafeMutablePointer<Int32>
    init(_ p: UnsafeMutablePointer<Int32>) { pointer = p }
    deinit { pointer.deallocate() }
}

extension Tensor {
    /// Max pooling on nChw16c data (a convolution's output, as in ResNet-50's stem): sixteen
    /// channels' windows at once, the result blocked too. The same choices as the plain pass: the
    /// first maximum of each window, or its first NaN.
    private func maxPool2dBlocked(_ g: PoolGeometry) throws -> Tensor {
        let os = g.oh * g.ow, s = g.h * g.w, blocks = g.n * g.c / 16
        let n = try Memory.elementCount([g.n, g.c, g.oh, g.ow], op: "max_pool2d")
        let out = Tensor(uninitialized: [g.n, g.c, g.oh, g.ow], count: n, layout: layout)  // FP32 or BF16 blocks
        let argmax = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        let px = heldStorage.pointer, po = out.heldStorage.pointer
        var shape = tb_pool_shape(h: Int64(g.h), w: Int64(g.w), kh: Int64(g.kh), kw: Int64(g.kw), sh: Int64(g.sh),
                                  sw: Int64(g.sw), ph: Int64(g.ph), pw: Int64(g.pw), dh: Int64(g.dh), dw: Int64(g.dw),
                                  oh: Int64(g.oh), ow: Int64(g.ow))
        withUnsafePointer(to: &shape) { sp in
            parallelFor(blocks, grain: 1) { r in
                tb_maxpool16_forward(px, po, layout == .blocked16BF16 ? 1 : 0, argmax, sp, Int64(r.lowerBound),
                                     Int64(r.upperBound))
            }
        }
        let x = self, keep = ArgmaxBuffer(argmax), c = g.c
        return out.recorded("max_pool2d", [x]) { grad, _ in
            // The gradient as it comes when it is FP32 blocks, else read plain (a BF16 gradient is
            // reordered once); dx is FP32 blocks, which the batch norm before takes as they are.
            let blockedGrad = grad.layout == .blocked16
            let pg = blockedGrad ? grad.heldStorage.pointer : grad.storage.pointer
            let dx = Tensor(uninitialized: x.shape, count: x.count, layout: .blocked16)
            let pd = dx.heldStorage.pointer, am = keep.pointer
            pd.initialize(repeating: 0, count: x.count)
            parallelFor(blocks, grain: 1) { r in
                for bb in r {
                    let d = pd + bb * s * 16, plane0 = (bb / (c / 16)) * c + (bb % (c / 16)) * 16
                    for i in 0..<os {
                        for j in 0..<16 {
                            let a = am[(bb * os + i) * 16 + j]
                            guard a >= 0 else { continue }
                            d[Int(a) * 16 + j] += blockedGrad ? pg[(bb * os + i) * 16 + j] : pg[(plane0 + j) * os + i]
                        }
                    }
                }
            }
            return [dx]
        }
    }
}
