import Testing
@testable import TrickbookTensor

/// Finite-difference checks of every differentiable op.
@Suite struct GradientTests {
    /// A random pair of shapes that broadcast together: rank 1–4, sizes 1–4, some axes set to 1 on
    /// one side, and sometimes fewer axes on one side.
    static func broadcastPair(_ seed: UInt64) -> ([Int], [Int]) {
        let g = Generator(seed: seed)
        let rank = 1 + g.int(below: 4)
        let full = (0..<rank).map { _ in 1 + g.int(below: 4) }
        var a = full, b = full
        for i in 0..<rank where g.int(below: 3) == 0 { if g.int(below: 2) == 0 { a[i] = 1 } else { b[i] = 1 } }
        if g.int(below: 3) == 0 { b = Array(b.dropFirst(g.int(below: rank))) }
        return g.int(below: 2) == 0 ? (a, b) : (b, a)
    }

    @Test(arguments: 0..<12)
    func broadcastArithmetic(seed: UInt64) throws {
        let (sa, sb) = Self.broadcastPair(seed)
        let a = try random(sa, seed: seed), b = try random(sb, seed: seed + 100, low: 0.5, high: 1.5)
        try gradCheck("add \(sa) \(sb)", [a, b]) { try $0[0] + $0[1] }
        try gradCheck("sub \(sa) \(sb)", [a, b]) { try $0[0] - $0[1] }
        try gradCheck("mul \(sa) \(sb)", [a, b]) { try $0[0] * $0[1] }
        try gradCheck("div \(sa) \(sb)", [a, b], eps: 1e-3) { try $0[0] / $0[1] }
        let pa = try random(sa, seed: seed, low: 0.5, high: 2)
        try gradCheck("pow \(sa) \(sb)", [pa, b], eps: 1e-3) { try $0[0].pow($0[1]) }
        let c = try distinct(sb, seed: seed + 7)
        let d = try distinct(sa, seed: seed + 8)
        try gradCheck("maximum", [d, try c.copy() + 0.003], eps: 5e-4) { try $0[0].maximum($0[1]) }
        try gradCheck("minimum", [d, try c.copy() + 0.003], eps: 5e-4) { try $0[0].minimum($0[1]) }
        let cond = try random(try broadcastShape(sa, sb, op: "t"), seed: seed + 9).gt(Tensor(scalar: 0))
        try gradCheck("where", [a, b]) { try Tensor.where(cond, $0[0], $0[1]) }
    }

    @Test func unary() throws {
        let x = try random([3, 4], seed: 1)
        try gradCheck("neg", [x]) { $0[0].neg() }
        try gradCheck("exp", [x], eps: 1e-3) { $0[0].exp() }
        try gradCheck("log", [try random([3, 4], seed: 2, low: 0.5, high: 2)], eps: 1e-3) { $0[0].log() }
        try gradCheck("sqrt", [try random([3, 4], seed: 3, low: 0.5, high: 2)], eps: 1e-3) { $0[0].sqrt() }
        try gradCheck("abs", [try awayFromZero([3, 4], seed: 4)]) { $0[0].abs() }
        let xc = try Tensor(try random([3, 4], seed: 5).scalars.map { abs($0 - 0.3) < 0.02 || abs($0 + 0.3) < 0.02 ? $0 + 0.05 : $0 }, shape: [3, 4])
        try gradCheck("clamp", [xc], eps: 1e-3) { try $0[0].clamp(min: -0.3, max: 0.3) }
        try gradCheck("relu", [try awayFromZero([2, 3, 4], seed: 6)]) { $0[0].relu() }
        try gradCheck("sigmoid", [x], eps: 1e-3) { $0[0].sigmoid() }
        try gradCheck("tanh", [x], eps: 1e-3) { $0[0].tanh() }
        try gradCheck("silu", [x], eps: 1e-3) { $0[0].silu() }
        try gradCheck("gelu", [x], eps: 1e-3) { $0[0].gelu() }
        // A straight-through estimator: over a step much wider than the rounding grid it is the identity.
        try gradCheck("round_float16", [x], eps: 0.25, atol: 5e-3) { $0[0].rounded(to: .float16) }
        try gradCheck("round_bfloat16", [x], eps: 0.25, atol: 2e-2) { $0[0].rounded(to: .bfloat16) }
    }

    @Test(arguments: [[2, 3, 4], [5], [3, 1, 2, 2]])
    func reductions(shape: [Int]) throws {
        let x = try random(shape, seed: UInt64(shape.count))
        for axis in 0..<shape.count {
            try gradCheck("sum axis \(axis)", [x]) { try $0[0].sum(axis: axis, keepdims: axis % 2 == 0) }
            try gradCheck("mean axis \(axis)", [x]) { try $0[0].mean(axis: axis) }
            try gradCheck("var axis \(axis)", [x], eps: 1e-3) { try $0[0].variance(axes: [axis], correction: shape[axis] > 1 ? 1 : 0) }
            let d = try distinct(shape, seed: 3)
            try gradCheck("max axis \(axis)", [d], eps: 1e-3) { try $0[0].max(axis: axis) }
            try gradCheck("min axis \(axis)", [d], eps: 1e-3) { try $0[0].min(axis: axis, keepdims: true) }
        }
        try gradCheck("sum all", [x]) { try $0[0].sum() }
        try gradCheck("var all", [x], eps: 1e-3) { try $0[0].variance() }
        try gradCheck("max all", [try distinct(shape, seed: 5)], eps: 1e-3) { try $0[0].max() }
        try gradCheck("topk", [try distinct(shape, seed: 6)], eps: 1e-3) { try $0[0].topk(1, axis: -1).values }
        if shape.count > 1 { try gradCheck("sum axes 0,-1", [x]) { try $0[0].sum(axes: [0, -1]) } }
    }

    @Test(arguments: 0..<4)
    func matmul(seed: UInt64) throws {
        let g = Generator(seed: seed)
        let m = 1 + g.int(below: 4), k = 1 + g.int(below: 5), n = 1 + g.int(below: 4)
        try gradCheck("matmul 2-D", [try random([m, k], seed: seed), try random([k, n], seed: seed + 1)]) { try $0[0].matmul($0[1]) }
        try gradCheck("matmul batched", [try random([2, m, k], seed: seed), try random([2, k, n], seed: seed + 1)]) { try $0[0].matmul($0[1]) }
        try gradCheck("matmul broadcast", [try random([3, 1, m, k], seed: seed), try random([2, k, n], seed: seed + 1)]) { try $0[0].matmul($0[1]) }
        try gradCheck("matmul vector", [try random([k], seed: seed), try random([k, n], seed: seed + 1)]) { try $0[0].matmul($0[1]) }
        try gradCheck("linear", [try random([2, m, k], seed: seed), try random([n, k], seed: seed + 1), try random([n], seed: seed + 2)]) {
            try $0[0].linear(weight: $0[1], bias: $0[2])
        }
    }

    @Test func layout() throws {
        let x = try random([2, 3, 4], seed: 11)
        try gradCheck("reshape", [x]) { try $0[0].reshaped([4, -1]) }
        try gradCheck("permute", [x]) { try $0[0].permuted([2, 0, 1]) }
        try gradCheck("transpose", [x]) { try $0[0].transposed(0, 2) }
        try gradCheck("slice", [x]) { try $0[0].slice(axis: 2, start: -3, end: 4, step: 2) }
        try gradCheck("concat", [x, try random([2, 1, 4], seed: 12)]) { try Tensor.concat([$0[0], $0[1]], axis: 1) }
        try gradCheck("stack", [x, try random([2, 3, 4], seed: 13)]) { try Tensor.stack([$0[0], $0[1]], axis: 3) }
        try gradCheck("index_select", [x]) { try $0[0].indexSelect(axis: 1, indices: [2, 0, 2]) }
        let index = try Tensor([0, 2, 1, 1, 0, 0, 2, 2, 1, 0, 0, 1], shape: [2, 3, 2])
        try gradCheck("gather", [x]) { try $0[0].gather(axis: 1, index: index) }
        try gradCheck("scatter_add", [x, try random([2, 3, 2], seed: 14)]) { try $0[0].scatterAdd(axis: 1, index: index, source: $0[1]) }
        try gradCheck("broadcast", [try random([3, 1], seed: 15)]) { try $0[0].broadcast(to: [2, 3, 4]) }
        try gradCheck("squeeze", [try random([2, 1, 3], seed: 16)]) { try $0[0].squeezed(axis: 1) }
        try gradCheck("unsqueeze", [x]) { try $0[0].unsqueezed(axis: -1) }
        try gradCheck("clone", [x]) { $0[0].cloned() }
        // x[1, ..., 1:4:2], x[nil, :, -1] and x[0, 0, 0] (repeated reads of one element add up).
        try gradCheck("index", [x]) { try $0[0].subscripted([.at(1), .ellipsis, .range(start: 1, end: 4, step: 2)]) }
        try gradCheck("index new axis", [x]) { try $0[0].subscripted([.newAxis, .range(start: nil, end: nil, step: 1), .at(-1)]) }
        try gradCheck("index twice", [x]) { try $0[0].subscripted([.at(0), .at(0), .at(0)]) * $0[0].subscripted([.at(0), .at(0), .at(0)]) }
    }

    @Test func softmaxes() throws {
        let x = try random([3, 5], seed: 21, low: -3, high: 3)
        for axis in [0, 1] {
            try gradCheck("softmax \(axis)", [x], eps: 1e-3) { try $0[0].softmax(axis: axis) }
            try gradCheck("log_softmax \(axis)", [x], eps: 1e-3) { try $0[0].logSoftmax(axis: axis) }
        }
        try gradCheck("dropout", [x]) { try $0[0].dropout(p: 0.5, training: true, generator: Generator(seed: 3)) }
    }

    /// conv2d over stride, padding, dilation, groups and bias, on random shapes.
    @Test(arguments: 0..<8)
    func conv2d(seed: UInt64) throws {
        let g = Generator(seed: seed)
        let groups = [1, 1, 2][g.int(below: 3)]
        let c = groups * (1 + g.int(below: 2)), o = groups * (1 + g.int(below: 2))
        let k = 1 + g.int(below: 3), s = 1 + g.int(below: 2), p = g.int(below: 2), d = 1 + g.int(below: 2)
        let h = d * (k - 1) + 1 + g.int(below: 4), w = d * (k - 1) + 1 + g.int(below: 4)
        let x = try random([2, c, h, w], seed: seed), wt = try random([o, c / groups, k, k], seed: seed + 1)
        let b = try random([o], seed: seed + 2)
        try gradCheck("conv2d c\(c) o\(o) k\(k) s\(s) p\(p) d\(d) g\(groups) \(h)x\(w)", [x, wt, b], eps: 1e-2) {
            try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: (s, s), padding: (p, p), dilation: (d, d), groups: groups)
        }
    }

    /// The AVX-512 direct kernels (16 output channels) by finite differences too.
    @Test func conv2dDirectKernels() throws {
        let x = try random([2, 2, 5, 6], seed: 51), w = try random([16, 2, 3, 3], seed: 52), b = try random([16], seed: 53)
        try gradCheck("direct conv2d stride 1", [x, w, b]) { try $0[0].conv2d(weight: $0[1], bias: $0[2], padding: (1, 1)) }
        try gradCheck("direct conv2d stride 2", [x, w, b]) { try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: (2, 2), padding: (1, 1)) }
    }

    /// Pools and resize on random plane sizes, with and without ceil mode.
    @Test(arguments: 0..<4)
    func pools(seed: UInt64) throws {
        let g = Generator(seed: seed + 30)
        let ceilMode = seed % 2 == 1
        let x = try distinct([2, 1 + g.int(below: 2), 5 + g.int(below: 4), 5 + g.int(below: 4)], seed: seed + 31)
        try gradCheck("max_pool k3 s2 p1", [x], eps: 1e-3) { try $0[0].maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: ceilMode) }
        try gradCheck("max_pool k2 dilation 2", [x], eps: 1e-3) { try $0[0].maxPool2d(kernel: (2, 2), stride: (2, 1), dilation: (2, 2), ceilMode: ceilMode) }
        for include in [true, false] {
            try gradCheck("avg_pool k3 s2 p1 include \(include)", [x]) {
                try $0[0].avgPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1), ceilMode: ceilMode, countIncludePad: include)
            }
        }
        try gradCheck("adaptive_avg_pool (3, 4)", [x]) { try $0[0].adaptiveAvgPool2d((3, 4)) }
        try gradCheck("global_avg_pool", [x]) { try $0[0].globalAvgPool2d() }
        try gradCheck("resize 5x9", [x]) { try $0[0].resizeBilinear(height: 5, width: 9) }
    }

    @Test(arguments: [[4, 3, 2, 3], [5, 3]])
    func batchNormTraining(shape: [Int]) throws {
        let c = shape[1]
        let x = try random(shape, seed: 41, low: -2, high: 2)
        let gamma = try random([c], seed: 42, low: 0.5, high: 1.5), beta = try random([c], seed: 43)
        try gradCheck("batch_norm training \(shape)", [x, gamma, beta], eps: 1e-3, atol: 3e-2) {
            try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
        }
        let rm = try random([c], seed: 44), rv = try random([c], seed: 45, low: 0.5, high: 2)
        try gradCheck("batch_norm eval \(shape)", [x, gamma, beta], eps: 1e-3) {
            try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false)
        }
    }

    /// Batch norm with its ReLU fused, and the residual sum with its ReLU: gradients by finite
    /// differences (inputs kept away from the kink by the seeds), in training and evaluation.
    @Test func fusedReLUs() throws {
        let x = try random([4, 3, 2, 3], seed: 48, low: -2, high: 2)
        let gamma = try random([3], seed: 49, low: 0.5, high: 1.5), beta = try random([3], seed: 50, low: -0.5, high: 0.5)
        try gradCheck("batch_norm_relu training", [x, gamma, beta], eps: 1e-3, atol: 3e-2) {
            try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true, relu: true)
        }
        let rm = try random([3], seed: 51), rv = try random([3], seed: 52, low: 0.5, high: 2)
        try gradCheck("batch_norm_relu eval", [x, gamma, beta], eps: 1e-3) {
            try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false, relu: true)
        }
        let a = try awayFromZero([2, 3, 4], seed: 53), b = try random([2, 3, 4], seed: 54, low: -0.05, high: 0.05)
        try gradCheck("add_relu", [a, b]) { try $0[0].addReLU($0[1]) }
    }

    /// Zero-gamma starts every block's last batch norm at γ = 0: the output is then β alone, the
    /// gradient reaches γ (Σ g·x̂) and β, and nothing flows to x until γ moves.
    @Test func batchNormAtZeroGamma() throws {
        let x = try random([4, 3, 2, 3], seed: 46, low: -2, high: 2)
        let gamma = try Tensor.zeros([3]), beta = try random([3], seed: 47)
        try gradCheck("batch_norm training, gamma = 0", [x, gamma, beta], eps: 1e-3, atol: 3e-2) {
            try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
        }
        let leaf = x.detached(), g = gamma.detached()
        leaf.requiresGrad = true; g.requiresGrad = true
        try leaf.batchNorm(weight: g, bias: nil, runningMean: nil, runningVar: nil, training: true).pow(try Tensor(scalar: 2)).sum().backward()
        #expect(leaf.grad?.scalars.allSatisfy { $0 == 0 } == true)
    }

    @Test func gradientAccumulatesAcrossBackwardCalls() throws {
        let x = try Tensor([1, 2, 3], shape: [3])
        x.requiresGrad = true
        try (x * x).sum().backward()
        try (x * 3).sum().backward()
        #expect(x.grad?.scalars == [5, 7, 9])  // 2x + 3
        x.zeroGrad()
        #expect(x.grad == nil)
    }

    @Test func leafGradientsNeverAliasOtherTensors() throws {
        let x = try Tensor([1, 2], shape: [2])
        x.requiresGrad = true
        let seed = try Tensor([1, 1], shape: [2])
        try x.reshaped([2, 1]).reshaped([2]).backward(seed)  // reshapes pass the seed's storage through
        seed.withUnsafeMutableBufferPointer { $0[0] = 100 }
        #expect(x.grad?.scalars == [1, 1])
        x.zeroGrad()
        try (x + x).sum().backward()  // add hands one gradient to both of its inputs
        #expect(x.grad?.scalars == [2, 2])
        let w = try Tensor([3], shape: [1])
        w.requiresGrad = true
        try (w * 2).sum().backward()
        let first = try #require(w.grad)
        try (w * 2).sum().backward()
        #expect(first.scalars == [4])  // accumulated in place into the adopted buffer
    }

    @Test func noGradScopeRecordsNothing() throws {
        let x = try Tensor([1, 2], shape: [2])
        x.requiresGrad = true
        let y = try withNoGrad { try x * 2 }
        #expect(!y.requiresGrad)
        #expect(y.isLeaf)
        expectError(["does not require gradients"]) { try y.sum().backward() }
    }

    @Test func sharedSubexpressionGetsBothContributions() throws {
        let x = try Tensor([3], shape: [1])
        x.requiresGrad = true
        let y = try x * x          // used twice below
        try (y + y * x).sum().backward()  // d/dx (x² + x³) = 2x + 3x² = 6 + 27
        #expect(x.grad?.scalars == [33])
    }
}

@Suite struct GraphLifetimeTests {
    /// A script can chain a million ops on one tensor; the graph must be freed without recursion
    /// (released node by node it overflowed the stack at about 100,000 links).
    @Test func aLongChainIsFreedAndStillDifferentiates() throws {
        let x = Tensor.full([1], 0)
        x.requiresGrad = true
        var y = x
        for _ in 0..<300_000 { y = try y + 1 }
        #expect(y.scalars == [300_000])
        try y.backward()
        #expect(x.grad?.scalars == [1])
        y = x  // the whole chain goes here
        #expect(y.isLeaf)
    }

    /// An input used twice, and a graph shared by two outputs, are freed only when the last holder goes.
    @Test func sharedSubgraphsSurviveTheirSiblings() throws {
        let x = Tensor.full([2], 3)
        x.requiresGrad = true
        let shared = try x * x
        var a: Tensor? = try shared + shared
        let b = try shared * 2
        a = nil
        #expect(a == nil)
        try b.backward(Tensor.full([2], 1))
        #expect(x.grad?.scalars == [12, 12])
    }
}
