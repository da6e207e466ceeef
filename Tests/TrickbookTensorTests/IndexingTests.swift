import Testing
@testable import TrickbookTensor

/// Indexing over several axes, assignment into a region, and printing, against values worked out
/// by hand (PyTorch gives the same for each).
@Suite struct IndexingTests {
    let x = try! Tensor((0..<24).map(Float.init), shape: [2, 3, 4])

    @Test(arguments: [
        ([TensorIndex.at(1)], [3, 4], (12..<24).map(Float.init)),
        ([.range(start: nil, end: nil, step: 1), .at(0), .range(start: 2, end: 5, step: 1)], [2, 2], [2, 3, 14, 15]),
        ([.ellipsis, .at(-1)], [2, 3], [3, 7, 11, 15, 19, 23]),
        ([.at(0), .ellipsis, .range(start: nil, end: nil, step: 2)], [3, 2], [0, 2, 4, 6, 8, 10]),
        ([.newAxis, .at(1), .at(2)], [1, 4], [20, 21, 22, 23]),
        ([.at(1), .range(start: -2, end: nil, step: 1), .at(3)], [2], [19, 23]),
        ([.range(start: 5, end: 9, step: 1)], [0, 3, 4], []),
    ] as [([TensorIndex], [Int], [Float])])
    func subscripts(items: [TensorIndex], shape: [Int], values: [Float]) throws {
        let y = try x.subscripted(items)
        #expect(y.shape == shape)
        #expect(y.scalars == values)
    }

    @Test func badSubscriptsAreErrors() throws {
        #expect(throws: TensorError("index", "index 3 is out of range for axis 1 of size 3 in shape [2, 3, 4]")) {
            try x.subscripted([.at(0), .at(3)])
        }
        #expect(throws: TensorError("index", "too many indices (4) for a tensor of shape [2, 3, 4]")) {
            try x.subscripted([.at(0), .at(0), .at(0), .at(0)])
        }
        #expect(throws: TensorError("index", "slice step must be positive (as in PyTorch), got -1")) {
            try x.subscripted([.range(start: nil, end: nil, step: -1)])
        }
        #expect(throws: TensorError("index", "an index can hold only one '...'")) { try x.subscripted([.ellipsis, .ellipsis]) }
    }

    @Test func assignmentWritesTheRegionAndBroadcasts() throws {
        let y = x.copy()
        try y.assign([.range(start: nil, end: nil, step: 1), .at(0)], Tensor(scalar: -1))
        try y.assign([.at(1), .at(2), .range(start: 1, end: 3, step: 1)], try Tensor([100, 200], shape: [2]))
        #expect(try y.subscripted([.ellipsis, .at(0), .range(start: nil, end: nil, step: 1)]).scalars == [-1, -1, -1, -1, -1, -1, -1, -1])
        #expect(try y.subscripted([.at(1), .at(2)]).scalars == [20, 100, 200, 23])
        let w = x.copy()
        w.requiresGrad = true
        #expect(throws: TensorError.self) { try w.assign([.at(0)], Tensor(scalar: 0)) }
        try withNoGrad { try w.assign([.at(0)], Tensor(scalar: 0)) }
        #expect(w.scalars.prefix(12).allSatisfy { $0 == 0 })
    }

    @Test func printsLikePyTorch() throws {
        #expect(try Tensor([1, -2, 3, 4], shape: [2, 2]).formatted() == "tensor([[ 1., -2.],\n        [ 3.,  4.]], shape=[2, 2], dtype=float32)")
        #expect(try Tensor([0.5, 0.25], shape: [2]).formatted() == "tensor([0.5000, 0.2500], shape=[2], dtype=float32)")
        #expect(Tensor(scalar: 2.5).formatted() == "tensor(2.5000, shape=[], dtype=float32)")
        #expect(try Tensor([1e-6, 1], shape: [2]).formatted() == "tensor([1.0000e-06, 1.0000e+00], shape=[2], dtype=float32)")
        let big = try Tensor.arange(0, 2000).reshaped([2, 1000])
        #expect(big.formatted() == "tensor([[   0.,    1.,    2., ...,  997.,  998.,  999.],\n        [1000., 1001., 1002., ..., 1997., 1998., 1999.]], shape=[2, 1000], dtype=float32)")
        let w = try Tensor([1], shape: [1])
        w.requiresGrad = true
        #expect(w.formatted().hasSuffix("requires_grad=true)"))
        #expect(try (w * 2).formatted().hasSuffix("grad_fn=mul)"))
    }
}
