import Foundation
import Testing
@testable import TrickbookTensor

/// Forward results against plain loops written straight from the definitions.
@Suite struct ReferenceTests {
    /// out[n][o][y][x] = b[o] + Σ_{c in group} Σ_i Σ_j in[n][c][y·s − p + i·d][x·s − p + j·d] · w[o][c'][i][j]
    static func directConv(_ x: Tensor, _ w: Tensor, _ b: Tensor, s: Int, p: Int, d: Int, groups: Int) -> [Float] {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, k) = (w.shape[0], w.shape[1], w.shape[2])
        let og = o / groups
        let oh = (h + 2 * p - d * (k - 1) - 1) / s + 1, ow = (wd + 2 * p - d * (k - 1) - 1) / s + 1
        let xs = x.scalars, ws = w.scalars, bs = b.scalars
        var out = [Float](repeating: 0, count: n * o * oh * ow)
        for bn in 0..<n {
            for oc in 0..<o {
                for y in 0..<oh {
                    for xx in 0..<ow {
                        var acc = Double(bs[oc])
                        for ci in 0..<cg {
                            let cin = (oc / og) * cg + ci
                            for i in 0..<k {
                                for j in 0..<k {
                                    let iy = y * s - p + i * d, ix = xx * s - p + j * d
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    acc += Double(xs[((bn * c + cin) * h + iy) * wd + ix]) * Double(ws[((oc * cg + ci) * k + i) * k + j])
                                }
                            }
                        }
                        out[((bn * o + oc) * oh + y) * ow + xx] = Float(acc)
                    }
                }
            }
        }
        return out
    }

    static let convs: [(Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (3, 4, 3, 1, 1, 1, 1, 9), (4, 6, 3, 2, 1, 1, 2, 10), (2, 5, 1, 2, 0, 1, 1, 7),
        (6, 6, 3, 1, 2, 2, 3, 11), (3, 8, 7, 2, 3, 1, 1, 16), (4, 4, 3, 1, 1, 1, 4, 6),
    ]

    /// Both paths (oneDNN where it loaded, and trickbook's own kernels) against the loops.
    @Test(arguments: convs)
    func conv2dMatchesSevenLoops(c: Int, o: Int, k: Int, s: Int, p: Int, d: Int, groups: Int, size: Int) throws {
        let x = try random([3, c, size, size + 1], seed: 1), w = try random([o, c / groups, k, k], seed: 2), b = try random([o], seed: 3)
        let expected = Self.directConv(x, w, b, s: s, p: p, d: d, groups: groups)
        for viaOneDNN in [true, false] {
            let y = try OneDNN.$override.withValue(viaOneDNN) {
                try x.conv2d(weight: w, bias: b, stride: (s, s), padding: (p, p), dilation: (d, d), groups: groups)
            }
            expectClose(y.scalars, expected, atol: 1e-4, rtol: 1e-4, "conv2d c\(c) o\(o) k\(k) s\(s) p\(p) d\(d) g\(groups) oneDNN \(viaOneDNN)")
        }
    }

    /// oneDNN's gradients against trickbook's own (im2col), with and without a bias, on the shapes
    /// above: groups, strides, padding, dilation.
    @Test(arguments: convs)
    func oneDNNGradientsMatchOwnKernels(c: Int, o: Int, k: Int, s: Int, p: Int, d: Int, groups: Int, size: Int) throws {
        try #require(OneDNN.available, "oneDNN is not installed: \(OneDNN.loadError)")
        let x = try random([3, c, size, size + 1], seed: 5), w = try random([o, c / groups, k, k], seed: 6), b = try random([o], seed: 7)
        for withBias in [true, false] {
            func grads(_ viaOneDNN: Bool) throws -> [[Float]] {
                try OneDNN.$override.withValue(viaOneDNN) {
                    for t in [x, w, b] { t.requiresGrad = true; t.zeroGrad() }
                    let out = try x.conv2d(weight: w, bias: withBias ? b : nil, stride: (s, s), padding: (p, p),
                                           dilation: (d, d), groups: groups)
                    try (out * random(out.shape, seed: 8)).sum().backward()
                    return [x, w, b].map { $0.grad?.scalars ?? [] }
                }
            }
            let theirs = try grads(true), ours = try grads(false)
            for (i, name) in ["dx", "dw", "db"].enumerated() {
                expectClose(theirs[i], ours[i], atol: 1e-3, rtol: 1e-4, "c\(c) o\(o) k\(k) s\(s) p\(p) d\(d) g\(groups) bias \(withBias): \(name)")
            }
        }
    }

    /// Max pooling on blocked data (ResNet-50's stem) gives the plain pass's values and gradients,
    /// with the gradient coming blocked (from a convolution) or plain, ties and a NaN included.
    @Test func blockedMaxPoolMatchesPlain() throws {
        try #require(OneDNN.available, "oneDNN is not installed: \(OneDNN.loadError)")
        let x = try random([2, 3, 11, 9], seed: 51), w1 = try Tensor.ones([16, 3, 1, 1])
        let w2 = try random([16, 16, 3, 3], seed: 52)
        func run(_ viaOneDNN: Bool, convAfter: Bool) throws -> [[Float]] {
            try OneDNN.$override.withValue(viaOneDNN) {
                for t in [x, w1, w2] { t.requiresGrad = true; t.zeroGrad() }
                var a = try x.conv2d(weight: w1).relu()  // equal channels: ties in every window
                if viaOneDNN { #expect(a.layout == .blocked16) }
                a = try a.maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
                let y = convAfter ? try a.conv2d(weight: w2, padding: (1, 1)) : a
                try (y * random(y.shape, seed: 53)).sum().backward()
                return [y.scalars] + [x, w1, w2].map { $0.grad?.scalars ?? [] }
            }
        }
        for convAfter in [true, false] {
            let blocked = try run(true, convAfter: convAfter), plain = try run(false, convAfter: convAfter)
            for (i, name) in ["y", "dx", "dw1", "dw2"].enumerated() {
                expectClose(blocked[i], plain[i], atol: 1e-4, rtol: 1e-4, "conv after \(convAfter): \(name)")
            }
        }
        // A NaN wins its windows in both.
        x.withUnsafeMutableBufferPointer { $0[5] = .nan }
        let viaBlocked = try OneDNN.$override.withValue(true) { try x.conv2d(weight: w1).maxPool2d(kernel: (3, 3), stride: (2, 2)) }
        let viaPlain = try OneDNN.$override.withValue(false) { try x.conv2d(weight: w1).maxPool2d(kernel: (3, 3), stride: (2, 2)) }
        #expect(viaBlocked.scalars.map(\.isNaN) == viaPlain.scalars.map(\.isNaN))
        #expect(viaBlocked.scalars.contains { $0.isNaN })
    }

    /// Random geometries (kernel, stride, padding, dilation, groups, odd sizes, windows that stop
    /// short of the right edge): oneDNN and trickbook's own kernels agree on values and gradients.
    @Test(arguments: 0..<64)
    func oneDNNAgreesOnRandomGeometries(seed: UInt64) throws {
        try #require(OneDNN.available, "oneDNN is not installed: \(OneDNN.loadError)")
        let r = Generator(seed: 1000 + seed)
        let groups = [1, 1, 2, 3][r.int(below: 4)], k = 1 + r.int(below: 5), d = 1 + r.int(below: 2)
        let c = groups * (1 + r.int(below: 3)), o = groups * (1 + r.int(below: 4))
        let s = 1 + r.int(below: 3), p = r.int(below: k / 2 + 1)
        let h = d * (k - 1) + 1 + r.int(below: 8), w = d * (k - 1) + 1 + r.int(below: 8)
        let x = try random([1 + r.int(below: 3), c, h, w], seed: seed), wt = try random([o, c / groups, k, k], seed: seed + 1)
        let b = try random([o], seed: seed + 2)
        func run(_ viaOneDNN: Bool) throws -> [[Float]] {
            try OneDNN.$override.withValue(viaOneDNN) {
                for t in [x, wt, b] { t.requiresGrad = true; t.zeroGrad() }
                let y = try x.conv2d(weight: wt, bias: b, stride: (s, s), padding: (p, p), dilation: (d, d), groups: groups)
                try (y * random(y.shape, seed: seed + 3)).sum().backward()
                return [y.scalars] + [x, wt, b].map { $0.grad?.scalars ?? [] }
            }
        }
        let theirs = try run(true), ours = try run(false)
        let label = "x \(x.shape) w \(wt.shape) s\(s) p\(p) d\(d) g\(groups)"
        for (i, name) in ["y", "dx", "dw", "db"].enumerated() { expectClose(theirs[i], ours[i], atol: 1e-3, rtol: 1e-4, "\(label): \(name)") }
    }

    /// A script that tries many image sizes keeps at most `cacheLimit` shapes of primitives, and
    /// every convolution still answers right (an evicted shape is made again).
    @Test func primitiveCacheIsBounded() throws {
        try #require(OneDNN.available, "oneDNN is not installed: \(OneDNN.loadError)")
        let w = try random([2, 1, 3, 3], seed: 61), b = try random([2], seed: 62)
        for h in 3..<(OneDNN.cacheLimit + 40) {
            let x = try random([1, 1, h, 4], seed: UInt64(h))
            let y = try OneDNN.$override.withValue(true) { try x.conv2d(weight: w, bias: b) }
            if h % 50 == 0 { expectClose(y.scalars, Self.directConv(x, w, b, s: 1, p: 0, d: 1, groups: 1), atol: 1e-4, rtol: 1e-4, "h \(h)") }
        }
        #expect(OneDNN.cachedShapes <= OneDNN.cacheLimit)
    }

    /// In BF16 a convolution leaves BF16 blocks, which go to the next convolution as they are: the
    /// same results and gradients as from the activation read back as plain FP32.
    @Test(.enabled(if: OneDNN.bf16InHardware))
    func bf16TakesBlockedActivations() throws {
        let x = try random([4, 16, 9, 7], seed: 41), w1 = try random([32, 16, 3, 3], seed: 42), w2 = try random([16, 32, 3, 3], seed: 43)
        func run(plainBetween: Bool) throws -> [[Float]] {
            try OneDNN.$lowPrecision.withValue(true) {
                for t in [x, w1, w2] { t.requiresGrad = true; t.zeroGrad() }
                let a = try x.conv2d(weight: w1, padding: (1, 1)).relu()
                #expect(a.layout == .blocked16BF16)
                if plainBetween { _ = a.scalars }  // any plain read reorders it in place
                let y = try a.conv2d(weight: w2, padding: (1, 1))
                try (y * random(y.shape, seed: 44)).sum().backward()
                return [y.scalars] + [x, w1, w2].map { $0.grad?.scalars ?? [] }
            }
        }
        let blocked = try run(plainBetween: false), plain = try run(plainBetween: true)
        for (i, name) in ["y", "dx", "dw1", "dw2"].enumerated() { expectClose(blocked[i], plain[i], atol: 1e-5, rtol: 1e-5, name) }
    }

    /// A residual block held in oneDNN's blocked layout from one convolution to the next (batch
    /// norm, ReLU and the sum working on it as it is) gives what the plain path gives: values,
    /// running statistics and every gradient.
    @Test(arguments: [true, false])
    func blockedLayoutsMatchPlain(training: Bool) throws {
        try #require(OneDNN.available, "oneDNN is not installed: \(OneDNN.loadError)")
        let x = try random([4, 16, 9, 7], seed: 31)
        let w1 = try random([32, 16, 3, 3], seed: 32, low: -0.2, high: 0.2), w2 = try random([32, 32, 3, 3], seed: 33, low: -0.2, high: 0.2)
        let ws = try random([32, 16, 1, 1], seed: 34), gamma = try random([32], seed: 35, low: 0.5, high: 1.5), beta = try random([32], seed: 36)
        func run(_ viaOneDNN: Bool) throws -> [[Float]] {
            let rm = Tensor.full([32], 0), rv = Tensor.full([32], 1)
            return try OneDNN.$override.withValue(viaOneDNN) {
                for t in [x, w1, w2, ws, gamma, beta] { t.requiresGrad = true; t.zeroGrad() }
                let a = try x.conv2d(weight: w1, padding: (1, 1))
                    .batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: training).relu()
                let b = try a.conv2d(weight: w2, padding: (1, 1))
                    .batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: training)
                let y = try (b + x.conv2d(weight: ws)).relu()
                #expect(!viaOneDNN || (a.layout == .blocked16 && y.layout == .blocked16), "the block left the blocked layout")
                try (y * random(y.shape, seed: 37)).sum().backward()
                return [y.scalars, rm.scalars, rv.scalars] + [x, w1, w2, ws, gamma, beta].map { $0.grad?.scalars ?? [] }
            }
        }
        let blocked = try run(true), plain = try run(false)
        for (i, name) in ["y", "running mean", "running var", "dx", "dw1", "dw2", "dws", "dgamma", "dbeta"].enumerated() {
            expectClose(blocked[i], plain[i], atol: 2e-3, rtol: 1e-3, "training \(training): \(name)")
        }
    }

    /// A convolution with a bias and the batch norm after it, folded into one (inference): its
    /// output against the three ops, with and without the ReLU; nil while gradients are recorded.
    @Test(.enabled(if: OneDNN.available)) func foldedConvBatchNorm() throws {
        let x = try random([3, 8, 9, 7], seed: 81), w = try random([16, 8, 3, 3], seed: 82), b = try random([16], seed: 83)
        let gamma = try random([16], seed: 84, low: 0.5, high: 1.5), beta = try random([16], seed: 85)
        let mean = try random([16], seed: 86), variance = try random([16], seed: 87, low: 0.2, high: 2)
        for relu in [false, true] {
            let folded = try withNoGrad {
                try x.conv2dFoldingBatchNorm(weight: w, bias: b, stride: (2, 2), padding: (1, 1), groups: 1, gamma: gamma, beta: beta,
                                             mean: mean, variance: variance, eps: 1e-5, relu: relu)
            }
            var y = try x.conv2d(weight: w, bias: b, stride: (2, 2), padding: (1, 1))
                .batchNorm(weight: gamma, bias: beta, runningMean: mean, runningVar: variance, training: false)
            if relu { y = y.relu() }
            let f = try #require(folded)
            expectClose(f.scalars, y.scalars, atol: 1e-4, rtol: 1e-4, "relu \(relu)")
        }
        #expect(try x.conv2dFoldingBatchNorm(weight: w, bias: b, stride: (1, 1), padding: (0, 0), groups: 1, gamma: gamma, beta: beta,
                                             mean: mean, variance: variance, eps: 1e-5, relu: false) == nil)
    }

    /// Global average pooling reads FP32 or BF16 blocks as they are held and gives the plain pass's
    /// means bitwise, and its gradient back blocked (FP32) with the plain pass's values.
    @Test func blockedGlobalAvgPoolMatchesPlain() throws {
        let x = try Tensor(random([3, 32, 5, 3], seed: 91).scalars.map { floatFromBFloat16Bits(bfloat16Bits($0)) }, shape: [3, 32, 5, 3])
        let g = try random([3, 32, 1, 1], seed: 92)
        func run(_ layout: Layout) throws -> (y: [Float], dx: [Float], dxLayout: Layout) {
            let xs = try #require(x.reordered(to: layout))
            xs.requiresGrad = true
            let y = try xs.globalAvgPool2d()
            let node = try #require(y.node)
            let dx = try #require(try node.backward(g, y).first ?? nil)
            let dxLayout = dx.layout  // as the op gives it (reading the values makes it plain)
            return (y.scalars, dx.scalars, dxLayout)
        }
        let plain = try run(.plain)
        for layout in [Layout.blocked16, .blocked16BF16] {
            let held = try run(layout)
            #expect(held.y == plain.y && held.dx == plain.dx, "\(layout) differs from plain")
            #expect(held.dxLayout == .blocked16)
        }
        #expect(plain.dxLayout == .plain)
    }

    /// The passes between BF16 convolutions (batch norm with its ReLU, the residual sum with its
    /// ReLU, ReLU, max-pool) on BF16 blocks are FP32 arithmetic on their values, rounded to BF16 as
    /// they leave: exactly the FP32 passes' results on the same values, rounded; batch norm's
    /// parameter gradients (FP32) exactly the same.
    @Test func bf16BlocksAreFP32PassesRounded() throws {
        func bf16(_ t: Tensor) throws -> Tensor { try Tensor(t.scalars.map { floatFromBFloat16Bits(bfloat16Bits($0)) }, shape: t.shape) }
        let x = try bf16(random([2, 32, 6, 5], seed: 71)), other = try bf16(random([2, 32, 6, 5], seed: 72))
        let g = try bf16(random([2, 32, 6, 5], seed: 73))
        let gamma = try random([32], seed: 74, low: 0.5, high: 1.5), beta = try random([32], seed: 75, low: -0.3, high: 0.3)
        func run(_ layout: Layout) throws -> [[Float]] {
            let xs = try #require(x.reordered(to: layout)), os = try #require(other.reordered(to: layout))
            let gs = try #require(g.reordered(to: layout))
            for t in [xs, os, gamma, beta] { t.requiresGrad = true; t.zeroGrad() }
            let a = try xs.batchNorm(weight: gamma, bias: beta, runningMean: nil, runningVar: nil, training: true, relu: true)
            let y = try xs.addReLU(os), r = xs.relu(), p = try xs.maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
            #expect([a, y, r, p].allSatisfy { $0.layout == layout }, "a pass left \(layout)")
            try a.backward(gs)  // the gradient held as the activations are, as a convolution gives it
            // (A leaf keeps its gradient plain; that dx was made in BF16 shows in its rounding.)
            let bn = [xs.grad?.scalars ?? [], gamma.grad?.scalars ?? [], beta.grad?.scalars ?? []]
            for t in [xs, os, gamma, beta] { t.zeroGrad() }
            try y.backward(gs)
            return [a.scalars, y.scalars, r.scalars, p.scalars] + bn + [os.grad?.scalars ?? []]
        }
        let half = try run(.blocked16BF16), full = try run(.blocked16)
        for (i, name) in ["bn+relu", "add+relu", "relu", "max-pool", "bn dx", "dgamma", "dbeta", "add dother"].enumerated() {
            let expected = [5, 6].contains(i) ? full[i] : full[i].map { floatFromBFloat16Bits(bfloat16Bits($0)) }
            let wrong = zip(half[i], expected).enumerated().filter { $0.element.0 != $0.element.1 }
            #expect(half[i].count == expected.count && wrong.isEmpty,
                    "\(name): \(wrong.count) of \(expected.count) are not the FP32 results rounded, first \(wrong.first.map { "\($0)" } ?? "")")
        }
    }

    /// The fused passes (batch norm + ReLU, sum + ReLU) give bitwise what the separate ops give,
    /// forward and backward, on plain tensors and on a convolution's blocked output.
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func fusedReLUsAreTheSeparateOps(blocked: Bool, training: Bool) throws {
        try #require(!blocked || OneDNN.available, "oneDNN is not installed: \(OneDNN.loadError)")
        let x = try random([4, 16, 9, 7], seed: 61), w = try random([32, 16, 3, 3], seed: 62, low: -0.2, high: 0.2)
        let gamma = try random([32], seed: 63, low: 0.5, high: 1.5), beta = try random([32], seed: 64, low: -0.3, high: 0.3)
        let ws = try random([32, 16, 1, 1], seed: 65)  // the shortcut: blocked too when z is
        func run(fused: Bool) throws -> [[Float]] {
            let rm = Tensor.full([32], 0), rv = Tensor.full([32], 1)
            return try OneDNN.$override.withValue(blocked) {
                for t in [x, w, gamma, beta, ws] { t.requiresGrad = true; t.zeroGrad() }
                let z = try x.conv2d(weight: w, padding: (1, 1)), other = try x.conv2d(weight: ws)
                #expect(z.layout == (blocked ? .blocked16 : .plain))
                let a = fused
                    ? try z.batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: training, relu: true)
                    : try z.batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: training).relu()
                let y = fused ? try a.addReLU(other) : try (a + other).relu()
                #expect(y.layout == z.layout)
                try (y * random(y.shape, seed: 66)).sum().backward()
                return [a.scalars, y.scalars, rm.scalars, rv.scalars] + [x, w, gamma, beta, ws].map { $0.grad?.scalars ?? [] }
            }
        }
        let fused = try run(fused: true), separate = try run(fused: false)
        for (i, name) in ["bn+relu", "add+relu", "running mean", "running var", "dx", "dw", "dgamma", "dbeta", "dws"].enumerated() {
            #expect(fused[i] == separate[i], "\(name) differs (blocked \(blocked), training \(training))")
        }
    }

    /// BF16 in hardware is FP32 arithmetic on BF16-rounded inputs, rounded to BF16 as it leaves
    /// (outputs and input gradients; weight gradients stay FP32): with inputs, weights and the
    /// output's gradient already on the BF16 grid, the BF16 path gives the FP32 path's results
    /// rounded to BF16, up to the order of the sums (one BF16 step).
    @Test(.enabled(if: OneDNN.bf16InHardware), arguments: bf16Convs)
    func bf16ConvolutionsAreFP32OnRoundedValues(c: Int, o: Int, k: Int, s: Int, p: Int, d: Int, groups: Int, size: Int) throws {
        let x = try random([3, c, size, size + 1], seed: 21).rounded(to: .bfloat16)
        let w = try random([o, c / groups, k, k], seed: 22).rounded(to: .bfloat16), b = try random([o], seed: 23)
        func run(_ low: Bool) throws -> [[Float]] {
            try OneDNN.$lowPrecision.withValue(low) {
                for t in [x, w, b] { t.requiresGrad = true; t.zeroGrad() }
                let out = try x.conv2d(weight: w, bias: b, stride: (s, s), padding: (p, p), dilation: (d, d), groups: groups)
                try (out * random(out.shape, seed: 24).rounded(to: .bfloat16)).sum().backward()
                return [out.scalars] + [x, w, b].map { $0.grad?.scalars ?? [] }
            }
        }
        let bf16 = try run(true), fp32 = try run(false)
        let rounded = fp32.map { $0.map { floatFromBFloat16Bits(bfloat16Bits($0)) } }
        for (i, name) in ["y", "dx", "dw", "db"].enumerated() {
            let label = "bf16 c\(c) o\(o) k\(k) s\(s) p\(p) d\(d) g\(groups): \(name)"
            if i < 2 {
                #expect(bf16[i].allSatisfy { floatFromBFloat16Bits(bfloat16Bits($0)) == $0 }, "\(label) is not BF16")
                expectClose(bf16[i], rounded[i], atol: 1e-4, rtol: 8e-3, label)
            } else {
                expectClose(bf16[i], fp32[i], atol: 1e-4, rtol: 1e-4, label)
            }
        }
        // And on values off the grid, the BF16 path really rounds: its output differs.
        let xr = try random([3, c, size, size + 1], seed: 25)
        let viaBF16 = try OneDNN.$lowPrecision.withValue(true) { try xr.conv2d(weight: w, stride: (s, s), padding: (p, p), dilation: (d, d), groups: groups) }
        let viaFP32 = try xr.conv2d(weight: w, stride: (s, s), padding: (p, p), dilation: (d, d), groups: groups)
        #expect(viaBF16.scalars != viaFP32.scalars)
    }

    /// Shapes with 16-channel blocks, which oneDNN's direct BF16 kernels take: c, o, k, stride,
    /// padding, dilation, groups, size.
    static let bf16Convs: [(Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (16, 16, 3, 1, 1, 1, 1, 9), (16, 32, 3, 2, 1, 1, 1, 10), (32, 16, 1, 2, 0, 1, 1, 7),
        (16, 16, 3, 1, 2, 2, 1, 11), (16, 32, 7, 2, 3, 1, 1, 16), (32, 32, 3, 1, 1, 1, 2, 6),
    ]

    /// Where BF16 has only oneDNN's GEMM or reference kernels (channels that do not fill 16-wide
    /// blocks: a stem's 1 or 3 input channels), the convolution runs in FP32 even in low precision,
    /// with the FP32 path's very results. Grouped ones with one channel a group have oneDNN's
    /// depthwise BF16 kernel and stay BF16.
    @Test(.enabled(if: OneDNN.bf16InHardware), arguments: convs)
    func bf16WithoutADirectKernelRunsInFP32(c: Int, o: Int, k: Int, s: Int, p: Int, d: Int, groups: Int, size: Int) throws {
        let x = try random([3, c, size, size + 1], seed: 31), w = try random([o, c / groups, k, k], seed: 32)
        func run(_ low: Bool) throws -> [[Float]] {
            try OneDNN.$lowPrecision.withValue(low) {
                for t in [x, w] { t.requiresGrad = true; t.zeroGrad() }
                let out = try x.conv2d(weight: w, stride: (s, s), padding: (p, p), dilation: (d, d), groups: groups)
                try (out * random(out.shape, seed: 34)).sum().backward()
                return [out.scalars] + [x, w].map { $0.grad?.scalars ?? [] }
            }
        }
        let low = try run(true), full = try run(false)
        if c / groups > 1 {
            #expect(low == full, "c\(c) o\(o) k\(k) g\(groups)")
        } else {
            #expect(low[0].allSatisfy { floatFromBFloat16Bits(bfloat16Bits($0)) == $0 } && low[0] != full[0])
        }
    }

    /// Shapes that take the AVX-512 direct kernels (16·k output channels, a kernel wider than 1×1):
    /// c, o, k, stride, padding, dilation, size.
    static let directConvs: [(Int, Int, Int, Int, Int, Int, Int)] = [
        (3, 16, 3, 1, 1, 1, 9), (5, 32, 3, 2, 1, 1, 11), (2, 16, 5, 1, 2, 2, 13), (16, 16, 3, 1, 0, 1, 30), (1, 16, 7, 2, 3, 1, 20),
    ]

    /// The direct kernels against the seven loops, and their gradients against the im2col path's.
    @Test(arguments: directConvs)
    func directKernelsMatchLoopsAndIm2col(c: Int, o: Int, k: Int, s: Int, p: Int, d: Int, size: Int) throws {
        let label = "direct conv c\(c) o\(o) k\(k) s\(s) p\(p) d\(d) \(size)"
        let x = try random([3, c, size, size - 1], seed: 11), w = try random([o, c, k, k], seed: 12), b = try random([o], seed: 13)
        let y = try OneDNN.$override.withValue(false) {
            try x.conv2d(weight: w, bias: b, stride: (s, s), padding: (p, p), dilation: (d, d))
        }
        expectClose(y.scalars, Self.directConv(x, w, b, s: s, p: p, d: d, groups: 1), atol: 1e-4, rtol: 1e-4, label)
        func grads(direct: Bool) throws -> [[Float]] {
            try OneDNN.$override.withValue(false) { try DirectConv.$enabled.withValue(direct) {
                for t in [x, w, b] { t.requiresGrad = true; t.zeroGrad() }
                let out = try x.conv2d(weight: w, bias: b, stride: (s, s), padding: (p, p), dilation: (d, d))
                try (out * random(out.shape, seed: 14)).sum().backward()
                return [x, w, b].map { $0.grad?.scalars ?? [] }
            } }
        }
        let viaDirect = try grads(direct: true), viaIm2col = try grads(direct: false)
        for (i, name) in ["dx", "dw", "db"].enumerated() {
            expectClose(viaDirect[i], viaIm2col[i], atol: 1e-3, rtol: 1e-4, "\(label): \(name)")
        }
    }

    /// Windows of the PyTorch pools, enumerated directly: positions of the padded image that each
    /// output covers, and which of them are real pixels.
    static func directPool(_ x: Tensor, k: Int, s: Int, p: Int, ceil: Bool, max: Bool, includePad: Bool) -> ([Float], [Int]) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        func size(_ len: Int) -> Int {
            let num = Double(len + 2 * p - k) / Double(s)
            var o = Int(ceil ? num.rounded(.up) : num.rounded(.down)) + 1
            if ceil && (o - 1) * s >= len + p { o -= 1 }
            return o
        }
        let oh = size(h), ow = size(w)
        let xs = x.scalars
        var out: [Float] = []
        for plane in 0..<(n * c) {
            for y in 0..<oh {
                for xx in 0..<ow {
                    var best = -Float.infinity, sum: Float = 0, real = 0, inPadded = 0
                    for i in 0..<k {
                        for j in 0..<k {
                            let iy = y * s - p + i, ix = xx * s - p + j
                            if iy < h + p && ix < w + p { inPadded += 1 }  // the window stops at the far padding edge
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            let v = xs[(plane * h + iy) * w + ix]
                            best = Swift.max(best, v); sum += v; real += 1
                        }
                    }
                    out.append(max ? best : sum / Float(includePad ? inPadded : real))
                }
            }
        }
        return (out, [n, c, oh, ow])
    }

    static let pools: [(Int, Int, Int, Bool)] = [(3, 2, 1, false), (3, 2, 1, true), (2, 2, 0, true), (3, 3, 1, true), (2, 1, 1, false), (3, 2, 0, true)]

    @Test(arguments: pools)
    func poolsMatchDirectWindows(k: Int, s: Int, p: Int, ceil: Bool) throws {
        let x = try random([2, 3, 7, 8], seed: 4)
        let (mx, shape) = Self.directPool(x, k: k, s: s, p: p, ceil: ceil, max: true, includePad: true)
        let m = try x.maxPool2d(kernel: (k, k), stride: (s, s), padding: (p, p), ceilMode: ceil)
        #expect(m.shape == shape)
        expectClose(m.scalars, mx, "max_pool k\(k) s\(s) p\(p) ceil \(ceil)")
        for include in [true, false] {
            let (av, _) = Self.directPool(x, k: k, s: s, p: p, ceil: ceil, max: false, includePad: include)
            let a = try x.avgPool2d(kernel: (k, k), stride: (s, s), padding: (p, p), ceilMode: ceil, countIncludePad: include)
            #expect(a.shape == shape)
            expectClose(a.scalars, av, "avg_pool k\(k) s\(s) p\(p) ceil \(ceil) include_pad \(include)")
        }
    }

    /// Worked by hand: avg_pool2d(k=3, s=2, p=1, ceil_mode=True) on a 1×1×4×4 ramp 0…15.
    /// Output 3×3: ⌈(4 + 2 − 3)/2⌉ + 1 = 3, and the last window starts at 3 < 4 + 1, so it stays.
    /// Output (0,0) spans rows and columns −1…1: pixels 0, 1, 4, 5 (sum 10) in 9 positions.
    /// Output (2,2) spans 3…5 but stops at the padded edge 4 + 1 = 5: 2×2 = 4 positions, one pixel, 15.
    @Test func avgPoolCeilModeWorkedByHand() throws {
        let x = try Tensor.arange(0, 16).reshaped([1, 1, 4, 4])
        let y = try x.avgPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: true, countIncludePad: true)
        #expect(y.shape == [1, 1, 3, 3])
        expectClose([try y.at([0, 0, 0, 0]), try y.at([0, 0, 2, 2])], [10.0 / 9, 15.0 / 4], "corners")
        let z = try x.avgPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: true, countIncludePad: false)
        expectClose([try z.at([0, 0, 0, 0]), try z.at([0, 0, 2, 2])], [10.0 / 4, 15], "corners without padding")
    }

    @Test func adaptiveAvgPoolBins() throws {
        // H = 5 into 3 bins: [0, 2), [1, 4), [3, 5).
        let x = try Tensor.arange(0, 5).reshaped([1, 1, 5, 1])
        let y = try x.adaptiveAvgPool2d((3, 1))
        expectClose(y.scalars, [0.5, 2, 3.5], "bins")
    }

    @Test func batchNormMatchesDefinition() throws {
        let x = try random([4, 3, 2, 2], seed: 5, low: -3, high: 5)
        let gamma = try Tensor([1, 2, 0.5], shape: [3]), beta = try Tensor([0, -1, 3], shape: [3])
        let rm = try Tensor.zeros([3]), rv = try Tensor.ones([3])
        let y = try x.batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: true, momentum: 0.1, eps: 1e-5)
        let xs = x.scalars
        var expected = [Float](repeating: 0, count: x.count)
        for ch in 0..<3 {
            var vals: [Double] = []
            for b in 0..<4 { for i in 0..<4 { vals.append(Double(xs[(b * 3 + ch) * 4 + i])) } }
            let mean = vals.reduce(0, +) / 16
            let variance = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 16
            for b in 0..<4 { for i in 0..<4 {
                let idx = (b * 3 + ch) * 4 + i
                expected[idx] = Float((Double(xs[idx]) - mean) / (variance + 1e-5).squareRoot() * Double(gamma.scalars[ch]) + Double(beta.scalars[ch]))
            } }
            expectClose([rm.scalars[ch], rv.scalars[ch]], [Float(0.1 * mean), Float(0.9 + 0.1 * variance * 16 / 15)], "running stats \(ch)")
        }
        expectClose(y.scalars, expected, atol: 1e-4, "batch_norm training")
        let e = try x.batchNorm(weight: gamma, bias: beta, runningMean: rm, runningVar: rv, training: false)
        let rmv = rm.scalars, rvv = rv.scalars
        let manual = xs.enumerated().map { i, v -> Float in
            let ch = (i / 4) % 3
            return (v - rmv[ch]) / (rvv[ch] + 1e-5).squareRoot() * gamma.scalars[ch] + beta.scalars[ch]
        }
        expectClose(e.scalars, manual, atol: 1e-4, "batch_norm eval")
    }

    @Test func bilinearMatchesPyTorchAlignCornersFalse() throws {
        // 1×1×2×2 [[0, 1], [2, 3]] upsampled to 4×4 (PyTorch: first row 0, 0.25, 0.75, 1).
        let x = try Tensor([0, 1, 2, 3], shape: [1, 1, 2, 2])
        let y = try x.resizeBilinear(height: 4, width: 4)
        expectClose(Array(y.scalars[0..<4]), [0, 0.25, 0.75, 1], "row 0")
        expectClose(Array(y.scalars[4..<8]), [0.5, 0.75, 1.25, 1.5], "row 1")
    }

    @Test func matmulMatchesLoops() throws {
        let a = try random([2, 5, 7], seed: 6), b = try random([7, 3], seed: 7)
        let c = try a.matmul(b)
        var expected: [Float] = []
        for bt in 0..<2 { for i in 0..<5 { for j in 0..<3 {
            var s: Float = 0
            for k in 0..<7 { s += try a.at([bt, i, k]) * b.at([k, j]) }
            expected.append(s)
        } } }
        #expect(c.shape == [2, 5, 3])
        expectClose(c.scalars, expected, "batched matmul")
    }

    @Test func stableSoftmax() throws {
        let x = try Tensor([1000, 1001, 1002, -1000], shape: [1, 4])
        let y = try x.softmax(axis: 1).scalars
        let e: [Double] = [exp(-2), exp(-1), 1, 0]
        let s = e.reduce(0, +)
        expectClose(y, e.map { Float($0 / s) }, "softmax of large logits")
        let l = try x.logSoftmax(axis: 1).scalars
        #expect(l.allSatisfy { $0.isFinite })
        expectClose(Array(l[0..<3]), [Float(-2 - log(s)), Float(-1 - log(s)), Float(-log(s))], atol: 1e-4, "log_softmax")
    }
}
