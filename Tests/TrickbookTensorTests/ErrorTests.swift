import Testing
@testable import TrickbookTensor

/// Bad input: a thrown error naming the shapes or sizes, never a crash.
@Suite struct ErrorTests {
    static let cases: [(String, [String], () throws -> Void)] = [
        ("broadcast", ["add", "[2, 3]", "[4, 3]"], { _ = try Tensor.zeros([2, 3]) + Tensor.zeros([4, 3]) }),
        ("matmul inner", ["matmul", "[2, 3]", "[4, 5]"], { _ = try Tensor.zeros([2, 3]).matmul(Tensor.zeros([4, 5])) }),
        ("matmul batch", ["matmul", "broadcast"], { _ = try Tensor.zeros([2, 2, 3]).matmul(Tensor.zeros([3, 3, 5])) }),
        ("conv rank", ["conv2d", "[N, C, H, W]", "[1, 28, 28]"], { _ = try Tensor.zeros([1, 28, 28]).conv2d(weight: Tensor.zeros([4, 1, 3, 3])) }),
        ("conv channels", ["conv2d", "3 channels", "[4, 1, 3, 3]"], { _ = try Tensor.zeros([1, 3, 8, 8]).conv2d(weight: Tensor.zeros([4, 1, 3, 3])) }),
        ("conv groups", ["groups"], { _ = try Tensor.zeros([1, 4, 8, 8]).conv2d(weight: Tensor.zeros([3, 2, 3, 3]), groups: 2) }),
        ("conv kernel too big", ["larger than the padded input"], { _ = try Tensor.zeros([1, 1, 2, 2]).conv2d(weight: Tensor.zeros([1, 1, 5, 5])) }),
        ("conv stride 0", ["stride must be positive"], { _ = try Tensor.zeros([1, 1, 8, 8]).conv2d(weight: Tensor.zeros([1, 1, 3, 3]), stride: (0, 1)) }),
        ("conv bias", ["bias", "[4]", "[3]"], { _ = try Tensor.zeros([1, 1, 8, 8]).conv2d(weight: Tensor.zeros([4, 1, 3, 3]), bias: Tensor.zeros([3])) }),
        ("negative size", ["negative size -1", "[-1, 3]"], { _ = try Tensor.zeros([-1, 3]) }),
        ("overflowing size", ["too many elements"], { _ = try Tensor.zeros([1 << 40, 1 << 40]) }),
        ("beyond memory", ["cannot allocate", "[100000, 100000, 100]", "GiB"], { _ = try Tensor.zeros([100_000, 100_000, 100]) }),
        ("values vs shape", ["5 values", "[2, 3]"], { _ = try Tensor([1, 2, 3, 4, 5], shape: [2, 3]) }),
        ("reshape", ["reshape", "[2, 3]", "[4]"], { _ = try Tensor.zeros([2, 3]).reshaped([4]) }),
        ("reshape two -1", ["only one size may be -1"], { _ = try Tensor.zeros([2, 3]).reshaped([-1, -1]) }),
        ("axis", ["axis 2", "rank 2"], { _ = try Tensor.zeros([2, 3]).sum(axis: 2) }),
        ("permute", ["not a permutation"], { _ = try Tensor.zeros([2, 3]).permuted([0, 0]) }),
        ("slice step", ["step must be positive"], { _ = try Tensor.zeros([4]).slice(axis: 0, step: 0) }),
        ("concat", ["concat", "[2, 4]", "[2, 3]"], { _ = try Tensor.concat([Tensor.zeros([2, 3]), Tensor.zeros([2, 4])], axis: 0) }),
        ("stack", ["stack", "[3]", "[2]"], { _ = try Tensor.stack([Tensor.zeros([2]), Tensor.zeros([3])]) }),
        ("index_select", ["index 5", "size 3"], { _ = try Tensor.zeros([2, 3]).indexSelect(axis: 1, indices: [5]) }),
        ("gather index", ["index 4", "axis 1"], { _ = try Tensor.zeros([2, 3]).gather(axis: 1, index: Tensor([4], shape: [1, 1])) }),
        ("gather non-integer", ["not an integer"], { _ = try Tensor.zeros([2, 3]).gather(axis: 1, index: Tensor([0.5], shape: [1, 1])) }),
        ("one_hot", ["label 3", "0..<3"], { _ = try Tensor([3], shape: [1]).oneHot(classes: 3) }),
        ("pool kernel", ["kernel size must be positive"], { _ = try Tensor.zeros([1, 1, 4, 4]).maxPool2d(kernel: (0, 2)) }),
        ("pool padding", ["at most half the kernel"], { _ = try Tensor.zeros([1, 1, 4, 4]).maxPool2d(kernel: (2, 2), padding: (2, 2)) }),
        ("pool too small", ["too small"], { _ = try Tensor.zeros([1, 1, 2, 2]).avgPool2d(kernel: (3, 3)) }),
        ("batch norm shape", ["weight", "[3]", "[4]"], { _ = try Tensor.zeros([2, 3, 4, 4]).batchNorm(weight: Tensor.zeros([4]), bias: nil, runningMean: nil, runningVar: nil, training: true) }),
        ("batch norm one value", ["more than one value"], { _ = try Tensor.zeros([1, 3]).batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true) }),
        ("linear", ["linear", "5 features", "[2, 4]"], { _ = try Tensor.zeros([3, 5]).linear(weight: Tensor.zeros([2, 4])) }),
        ("backward non-scalar", ["backward", "[2, 2]"], {
            let x = try Tensor.zeros([2, 2]); x.requiresGrad = true
            try (x * 2).backward()
        }),
        ("clamp", ["min 2.0 is greater than max 1.0"], { _ = try Tensor.zeros([2]).clamp(min: 2, max: 1) }),
        ("randint", ["low < high"], { _ = try Tensor.randint(3, 3, shape: [2], generator: Generator(seed: 0)) }),
        ("bernoulli", ["probability"], { _ = try Tensor.bernoulli([2], p: 1.5, generator: Generator(seed: 0)) }),
        ("topk", ["k = 5", "size 3"], { _ = try Tensor.zeros([3]).topk(5) }),
        ("max of empty", ["empty"], { _ = try Tensor.zeros([0]).max() }),
        ("resize", ["output size must be positive"], { _ = try Tensor.zeros([1, 1, 4, 4]).resizeBilinear(height: 0, width: 2) }),
    ]

    /// Tensors with a zero-sized axis go through every op without a crash: a result or an error.
    @Test(arguments: [[0], [0, 3], [2, 0], [0, 2, 3, 3], [2, 0, 3, 3], [2, 2, 0, 3]])
    func emptyTensorsNeverCrash(shape: [Int]) throws {
        let x = try Tensor.zeros(shape)
        x.requiresGrad = true
        let ops: [(Tensor) throws -> Tensor] = [
            { $0.exp() }, { $0.relu() }, { try $0 + $0 }, { try $0 * 2 }, { try $0.sum() }, { try $0.sum(axis: 0) },
            { try $0.mean() }, { try $0.max() }, { try $0.softmax(axis: -1) }, { try $0.logSoftmax(axis: 0) },
            { try $0.reshaped([-1]) }, { try $0.transposed(0, -1) }, { try $0.slice(axis: 0, start: 1) },
            { try Tensor.concat([$0, $0]) }, { try $0.matmul($0.transposed(0, -1)) }, { try $0.oneHot(classes: 2) },
            { try $0.conv2d(weight: Tensor.zeros([1, $0.shape.count > 1 ? $0.shape[1] : 1, 1, 1])) },
            { try $0.maxPool2d(kernel: (1, 1)) }, { try $0.avgPool2d(kernel: (1, 1)) }, { try $0.globalAvgPool2d() },
            { try $0.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true) },
            { try $0.resizeBilinear(height: 2, width: 2) }, { try $0.topk(0).values }, { try $0.variance() },
        ]
        for op in ops {
            if let y = try? op(x), y.count == 1, y.requiresGrad { try? y.backward() }
        }
    }

    @Test(arguments: 0..<cases.count)
    func badInputThrowsClearError(index: Int) {
        let (name, fragments, body) = Self.cases[index]
        expectError(fragments + []) { try body() }
        _ = name
    }
}
