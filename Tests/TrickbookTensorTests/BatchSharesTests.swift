import Testing
@testable import TrickbookTensor

/// One process computing as ranks do (BatchShares, the language's `as_ranks`): the ops that mix
/// images take each share of the batch on its own and add the shares' sums in order. The results
/// are the whole batch's to rounding, a weight's gradient is bitwise the sum of what each share
/// gives alone (what ranks add), and the gradients still pass finite differences.
@Suite struct BatchSharesTests {
    func inShares<T>(_ k: Int, _ body: () throws -> T) rethrows -> T { try BatchShares.$scoped.withValue(k) { try body() } }

    @Test func sharesAreTheLoadersSplitOfABatch() {
        #expect(inShares(2) { BatchShares.of(128) } == [0..<64, 64..<128])
        #expect(inShares(3) { BatchShares.of(8) } == [0..<2, 2..<5, 5..<8])
        #expect(inShares(3) { BatchShares.of(2) } == nil)  // fewer images than shares: whole
        #expect(inShares(1) { BatchShares.of(128) } == nil)
    }

    /// Outputs and every gradient of `f` in shares against the whole batch.
    func compare(_ label: String, _ inputs: [Tensor], shares: Int, _ f: ([Tensor]) throws -> Tensor) throws {
        func run() throws -> (out: [Float], grads: [[Float]]) {
            for x in inputs { x.requiresGrad = true; x.zeroGrad() }
            let y = try f(inputs)
            try (y * (try random(y.shape, seed: 7))).sum().backward()
            return (y.scalars, inputs.map { $0.grad?.scalars ?? [] })
        }
        let whole = try run(), shared = try inShares(shares) { try run() }
        expectClose(shared.out, whole.out, atol: 1e-5, rtol: 1e-5, "\(label) in \(shares) shares: output")
        for (k, (a, b)) in zip(shared.grads, whole.grads).enumerated() {
            expectClose(a, b, atol: 1e-5, rtol: 1e-5, "\(label) in \(shares) shares: gradient of input \(k)")
        }
    }

    @Test func theOpsInSharesGiveTheWholeBatchsResults() throws {
        for shares in [2, 3] {
            let x = try random([8, 16, 6, 6], seed: 1), w = try random([16, 16, 3, 3], seed: 2, low: -0.2, high: 0.2)
            let b = try random([16], seed: 3)
            try compare("conv2d", [x, w, b], shares: shares) { try $0[0].conv2d(weight: $0[1], bias: $0[2], padding: (1, 1)) }
            let v = try random([8, 12], seed: 4), lw = try random([5, 12], seed: 5), lb = try random([5], seed: 6)
            try compare("linear", [v, lw, lb], shares: shares) { try $0[0].linear(weight: $0[1], bias: $0[2]) }
            let g = try random([16], seed: 8, low: 0.5, high: 1.5), beta = try random([16], seed: 9)
            try compare("batch_norm", [x, g, beta], shares: shares) {
                try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true, relu: true)
            }
        }
    }

    /// The property ranks rely on: in shares, a weight's gradient is bitwise the sum, in order, of
    /// the gradients each share gives alone.
    @Test func aWeightsGradientIsTheSumOfTheSharesOwn() throws {
        // Three shares: their sums' order shows.
        let x = try random([9, 3, 5, 5], seed: 11), w = try random([4, 3, 3, 3], seed: 12), seed = try random([9, 4, 5, 5], seed: 13)
        let v = try random([9, 7], seed: 14), lw = try random([2, 7], seed: 15), lseed = try random([9, 2], seed: 16)
        func convGrad(_ r: Range<Int>?, shares: Int = 1) throws -> [Float] {
            w.requiresGrad = true; w.zeroGrad()
            try inShares(shares) {
                let input = r.map { x.batchSlice($0) } ?? x, s = r.map { seed.batchSlice($0) } ?? seed
                try (input.conv2d(weight: w, padding: (1, 1)) * s).sum().backward()
            }
            return try #require(w.grad).scalars
        }
        func linearGrad(_ r: Range<Int>?, shares: Int = 1) throws -> [Float] {
            lw.requiresGrad = true; lw.zeroGrad()
            try inShares(shares) {
                let input = r.map { v.batchSlice($0) } ?? v, s = r.map { lseed.batchSlice($0) } ?? lseed
                try (input.linear(weight: lw) * s).sum().backward()
            }
            return try #require(lw.grad).scalars
        }
        func inOrder(_ parts: [[Float]]) -> [Float] { parts.dropFirst().reduce(parts[0]) { zip($0, $1).map { $0 + $1 } } }
        let shares = [0..<3, 3..<6, 6..<9]
        #expect(try convGrad(nil, shares: 3) == inOrder(try shares.map { try convGrad($0) }))
        #expect(try linearGrad(nil, shares: 3) == inOrder(try shares.map { try linearGrad($0) }))
    }

    @Test func gradientsInSharesPassFiniteDifferences() throws {
        try inShares(2) {
            let x = try random([4, 2, 4, 4], seed: 21), w = try random([3, 2, 3, 3], seed: 22), b = try random([3], seed: 23)
            try gradCheck("conv2d in shares", [x, w, b]) { try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: (2, 2), padding: (1, 1)) }
            let v = try random([4, 5], seed: 24), lw = try random([3, 5], seed: 25), lb = try random([3], seed: 26)
            try gradCheck("linear in shares", [v, lw, lb]) { try $0[0].linear(weight: $0[1], bias: $0[2]) }
            let y = try awayFromZero([4, 3, 2, 2], seed: 27), g = try random([3], seed: 28, low: 0.5, high: 1.5), beta = try random([3], seed: 29)
            try gradCheck("batch_norm in shares", [y, g, beta], eps: 1e-2, atol: 5e-3, rtol: 5e-3) {
                try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
            }
        }
    }

    @Test func aBatchCutIntoSharesAndJoinedIsTheSameInItsLayout() throws {
        // A convolution's output as oneDNN leaves it (blocked where it is available), cut and joined.
        let y = try withNoGrad { try random([5, 16, 3, 3], seed: 31).conv2d(weight: try random([16, 16, 1, 1], seed: 32)) }
        let parts = [0..<2, 2..<5].map { y.batchSlice($0) }
        #expect(parts.allSatisfy { $0.layout == y.layout })
        let joined = Tensor.joiningBatches(parts)
        #expect(joined.shape == y.shape && joined.layout == y.layout)
        #expect(joined.scalars == y.scalars)
        #expect(parts[1].scalars == Array(y.scalars[(2 * 16 * 9)...]))
    }
}
