import Testing
@testable import TrickbookTensor

/// Values of creation, layout, reduction and indexing ops, worked by hand.
@Suite struct ValueTests {
    @Test func creation() throws {
        #expect(try Tensor.arange(0, 5).scalars == [0, 1, 2, 3, 4])
        #expect(try Tensor.arange(1, 2, step: 0.25).scalars == [1, 1.25, 1.5, 1.75])
        #expect(try Tensor.arange(3, 0, step: -1).scalars == [3, 2, 1])
        #expect(try Tensor.linspace(0, 1, count: 5).scalars == [0, 0.25, 0.5, 0.75, 1])
        #expect(try Tensor.full([2, 2], value: 7).scalars == [7, 7, 7, 7])
        #expect(try Tensor.zeros([0, 3]).count == 0)
        let n = try Tensor.nested([[1, 2, 3], [4, 5, 6]] as [[Double]])
        #expect(n.shape == [2, 3] && n.scalars == [1, 2, 3, 4, 5, 6])
        #expect(try Tensor.nested([[[1], [2]]] as [Any]).shape == [1, 2, 1])
        expectError(["ragged", "[1]"]) { _ = try Tensor.nested([[1, 2], [3]] as [[Int]]) }
        expectError(["not a number", "[0][1]"]) { _ = try Tensor.nested([[1, "x"]] as [[Any]]) }
    }

    @Test func reductionsAndExtremes() throws {
        let x = try Tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8], shape: [3, 4])
        #expect(try x.sum().item == 52)
        #expect(try x.sum(axis: 0).scalars == [13, 13, 11, 15])
        #expect(try x.sum(axis: 1, keepdims: true).shape == [3, 1])
        #expect(try x.mean(axis: 1).scalars == [2.25, 5.5, 5.25])
        #expect(try x.max(axis: 1).scalars == [4, 9, 8])
        #expect(try x.argmax(axis: 1).scalars == [2, 1, 3])
        #expect(try x.min(axis: 0).scalars == [3, 1, 2, 1])
        #expect(try x.argmin().item == 1)
        #expect(try x.max().item == 9)
        let v = try Tensor([2, 4, 4, 4, 5, 5, 7, 9], shape: [8])
        #expect(try v.variance().item == 4)  // the textbook example: σ = 2
        #expect(abs(try v.variance(correction: 1).item - 32.0 / 7) < 1e-6)
        let (vals, idx) = try x.topk(2, axis: 1)
        #expect(vals.scalars == [4, 3, 9, 6, 8, 5] && idx.scalars == [2, 0, 1, 3, 3, 0])
        let (low, lowIdx) = try x.topk(1, axis: 0, largest: false)
        #expect(low.scalars == [3, 1, 2, 1] && lowIdx.scalars == [0, 0, 1, 0])
    }

    @Test func layoutValues() throws {
        let x = try Tensor.arange(0, 6).reshaped([2, 3])
        #expect(try x.transposed().scalars == [0, 3, 1, 4, 2, 5])
        #expect(try x.permuted([1, 0]).shape == [3, 2])
        #expect(try x.slice(axis: 1, start: 1).scalars == [1, 2, 4, 5])
        #expect(try x.slice(axis: 1, start: -1).scalars == [2, 5])
        #expect(try x.slice(axis: 1, start: 0, end: 100, step: 2).scalars == [0, 2, 3, 5])
        #expect(try x.slice(axis: 0, start: 5).shape == [0, 3])
        #expect(try Tensor.concat([x, x], axis: 1).scalars == [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])
        #expect(try Tensor.stack([x, x], axis: 0).shape == [2, 2, 3])
        #expect(try x.indexSelect(axis: 1, indices: [2, -3]).scalars == [2, 0, 5, 3])
        let g = try x.gather(axis: 1, index: Tensor([2, 0, 1, 1], shape: [2, 2]))
        #expect(g.scalars == [2, 0, 4, 4])
        let s = try Tensor.zeros([2, 3]).scatterAdd(axis: 1, index: Tensor([2, 2, 0, 1], shape: [2, 2]), source: Tensor([1, 2, 3, 4], shape: [2, 2]))
        #expect(s.scalars == [0, 0, 3, 3, 4, 0])
        #expect(try Tensor([2, 0], shape: [2]).oneHot(classes: 3).scalars == [0, 0, 1, 1, 0, 0])
        #expect(try x.reshaped([3, -1]).shape == [3, 2])
        #expect(try Tensor.arange(0, 24).reshaped([2, 3, 4]).flattened(from: 1).shape == [2, 12])
    }

    @Test func broadcastingValues() throws {
        let col = try Tensor([1, 2], shape: [2, 1]), row = try Tensor([10, 20, 30], shape: [3])
        #expect(try (col + row).scalars == [11, 21, 31, 12, 22, 32])
        #expect(try (row * 2).scalars == [20, 40, 60])
        #expect(try (1 / Tensor([4], shape: [1])).item == 0.25)
        #expect(try row.pow(2).scalars == [100, 400, 900])
        #expect(try Tensor.where(Tensor([1, 0, 1], shape: [3]), row, Tensor(scalar: -1)).scalars == [10, -1, 30])
        #expect(try row.gt(Tensor(scalar: 15)).scalars == [0, 1, 1])
        #expect(try row.clamp(min: 15, max: 25).scalars == [15, 20, 25])
    }

    @Test func activationsAtKnownPoints() throws {
        let x = try Tensor([-1, 0, 2], shape: [3])
        expectClose(x.relu().scalars, [0, 0, 2], "relu")
        expectClose(x.sigmoid().scalars, [0.26894142, 0.5, 0.88079708], "sigmoid")
        expectClose(x.silu().scalars, [-0.26894142, 0, 1.76159416], "silu")
        expectClose(x.gelu().scalars, [-0.15865525, 0, 1.95449974], "gelu")  // x·Φ(x)
        expectClose(x.tanh().scalars, [-0.76159416, 0, 0.96402758], "tanh")
    }

    @Test func dropoutKeepsExpectationAndIsIdentityInEval() throws {
        let x = try Tensor.ones([10000])
        let y = try x.dropout(p: 0.3, training: true, generator: Generator(seed: 1))
        let kept = y.scalars.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })
        #expect(abs(Float(kept.count) / 10000 - 0.7) < 0.02)
        #expect(try x.dropout(p: 0.3, training: false) === x)
    }
}
