import Testing
import TrickbookBindings
@testable import TrickbookScript

/// The tensor from the language: creation, indexing over several axes, assignment into slices,
/// functions and methods, printing.
@Suite struct TensorLanguageTests {
    @Test func indexingAndAssignment() throws {
        let lines = try printed("""
        let x = arange(24).reshape(2, 3, 4)
        print(x[:, 0, 2:5].tolist(), x[..., -1].shape, x[1, -1, ::2].tolist(), x[nil].shape, x[0][1][2].item)
        x[:, 0] = -1
        x[1, 1:, 3] += 100
        print(x[0, 0].tolist(), x[1, :, 3].tolist())
        var n = 0
        for row in x { n += row.numel() }
        print(n, len(x))
        """)
        #expect(lines == ["[[2.0, 3.0], [14.0, 15.0]] [2, 3] [20.0, 22.0] [1, 2, 3, 4] 6.0",
                          "[-1.0, -1.0, -1.0, -1.0] [-1.0, 119.0, 123.0]", "24 2"], "\(lines)")
    }

    @Test func functionsAndMethods() throws {
        let lines = try printed("""
        let x = tensor([[1.0, -2.0], [3.0, 4.0]])
        print(x.sum(axis: [0, 1]).item, x.mean(axis: 1, keepdims: true).shape, x.max(axis: 0).tolist(), x.argmin().item)
        print(x.clamp(min: 0).tolist(), (x >= 1).tolist(), (x == 3).sum().item, where(x > 0, x, 0).tolist())
        print(cat([x, x], axis: 1).shape, stack([x, x]).shape, x.permute(1, 0).tolist(), x.unsqueeze(0).squeeze().shape)
        print(allclose(softmax(x, axis: 1).sum(axis: 1), ones([2])), one_hot([0, 2], 3).tolist(), eye(2).tolist())
        print(full([2], 7).tolist(), linspace(0, 1, 3).tolist(), x.variance(correction: 0).item, x.topk(1)[1].tolist())
        print(x.index_select(0, [1]).tolist(), x.gather(1, tensor([[1], [0]])).tolist(), tensor([0.1]).rounded("bf16").item)
        let w = tensor([2.0], requires_grad: true)
        let y = (w * w).sum()
        y.backward()
        print(w.grad.item, y.requires_grad, y.detach().requires_grad, w.clone().requires_grad, w.is_leaf, y.is_leaf)
        w.grad = nil
        print(w.grad, randn([2], generator: generator(3)).tolist() == randn([2], generator: generator(3)).tolist())
        """)
        #expect(lines == [
            "6.0 [2, 1] [3.0, 4.0] 1.0",
            "[[1.0, 0.0], [3.0, 4.0]] [[1.0, 0.0], [1.0, 1.0]] 1.0 [[1.0, 0.0], [3.0, 4.0]]",
            "[2, 4] [2, 2, 2] [[1.0, 3.0], [-2.0, 4.0]] [2, 2]",
            "true [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]] [[1.0, 0.0], [0.0, 1.0]]",
            "[7.0, 7.0] [0.0, 0.5, 1.0] 5.25 [[0.0], [1.0]]",
            "[[3.0, 4.0]] [[-2.0], [3.0]] 0.100097656",
            "4.0 true false true true false",
            "nil true",
        ], "\(lines)")
    }

    @Test func printsLikePyTorch() throws {
        let lines = try printed("print(tensor([[1, 2], [3, 4]]))\nprint(str(tensor([0.5], requires_grad: true)))")
        #expect(lines == ["tensor([[1., 2.],\n        [3., 4.]], shape=[2, 2], dtype=float32)",
                          "tensor([0.5000], shape=[1], dtype=float32, requires_grad=true)"], "\(lines)")
    }

    /// Each op's error names the op and the shapes, at the script's location.
    @Test(arguments: [
        ("zeros([2, 3]) + zeros([4])", "cell:1:15: error: add: cannot broadcast shapes [2, 3] and [4]"),
        ("zeros([2, 3])[0, 5]", "cell:1:14: error: index: index 5 is out of range for axis 1 of size 3 in shape [2, 3]"),
        ("zeros([2, 3]) @ zeros([2, 3])", "matmul"),
        ("zeros([2])[\"a\"]", "a tensor index must be an int, a slice, ... or nil, got string"),
        ("[1, 2][0, 1]", "list takes one index or one slice, not 2 items"),
        ("let w = tensor([1.0], requires_grad: true)\nw[0] = 2", "requires gradients: write into it inside no_grad"),
        ("zeros([2, 3]).reshape(4, 2)", "reshape: cannot reshape [2, 3] (6 elements) to [4, 2]"),
        ("zeros([1, 1, 4, 4]).conv2d(zeros([2, 3, 3, 3]))", "conv2d"),
    ])
    func opErrorsNameTheOpAndShapes(source: String, message: String) throws {
        try expectError(session().0, source, message)
    }
}

/// What the review of the bindings found, each now an answer or a clear error.
@Suite struct BindingsEdgeTests {
    @Test func tensorsInConditionsAndSharedParameters() throws {
        let lines = try printed("""
        print(bool(tensor([0.5])), bool(tensor([0])), (zeros([2]) == ones([2])).any(), (zeros([2]) < 1).all())
        let l = linear(2, 2, seed: 1)
        let twice = sequential([l, relu(), l])
        print(len(twice.parameters()), len(sgd(twice, 0.1, no_bias_decay: true).param_groups[0].params), twice.parameter_count)
        var s = relu()
        for k in range(40) { s = sequential([s, s]) }
        print(len(s.modules()))
        """)
        #expect(lines == ["true false false true", "2 1 6", "41"], "\(lines)")
    }

    @Test(arguments: [
        ("if zeros([2]) == ones([2]) { print(1) }", "the truth of a tensor of shape [2] is ambiguous: use .any() or .all()"),
        ("tensor([[1], [2]]).expand(2, -3)", "broadcast: negative size -3"),
        ("smooth_targets(tensor([0.0]).log(), 3, 0.1)", "must hold whole-number labels, found -inf"),
        ("cross_entropy()(zeros([1, 3]), [9223372036854775807])", "label 9223372036854775807 at position 0 is not in 0..<3"),
        ("randint(-9223372036854775807, 9223372036854775807, [1])", "randint"),
        ("zeros([2]).std(correction: -9223372036854775807)", "correction must be in 0..<2"),
        ("ones([1, 1, 2, 2]).resize(1, 1000000000000)", "resize: cannot allocate"),
        ("arange(10)[1::9223372036854775807].tolist() == [1.0] and 1 / 0", "division by zero"),
        ("index_select_ok = zeros([3]).index_select(0, [99999999999])", "beyond any tensor's axis"),
        ("module(\"M\", {\"eval\": relu()}, fn(m, x) => x)", "has the key \"eval\", which every model already has"),
        ("let o = sgd(resnet(20, in_channels: 1, classes: 10, width: 8), 0.1)\no.lr = -1", "lr must be a finite rate >= 0, got -1.0"),
        ("var s = relu()\nfor k in range(300) { s = sequential([s]) }", "nests modules 200 deep; at most 200 levels"),
    ])
    func reviewedInputsAreClearErrors(source: String, message: String) throws {
        try expectError(session().0, source, message)
    }
}
