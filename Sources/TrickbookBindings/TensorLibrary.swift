import TrickbookData
import TrickbookScript
import TrickbookTensor

/// Tensors: creation, random draws, the functions PyTorch has as `torch.*`, and the tensor type
/// with its methods, operators and indexing.
enum TensorLibrary: Library {
    static let rows: [Row] = [
        Row(
            "tensor(values, requires_grad = false)", doc: "A tensor from nested lists of numbers.",
            example: "tensor([[1, 2], [3, 4]])", tensor),
        Row(
            "zeros(shape)",
            doc: "A tensor of zeros.",
            example: "zeros([2, 3])"
        ) { a in box(try Tensor.zeros(try a.shape("shape"))) },
        Row(
            "ones(shape)",
            doc: "A tensor of ones.",
            example: "ones([2, 3])"
        ) { a in box(try Tensor.ones(try a.shape("shape"))) },
        Row("full(shape, value)", doc: "A tensor filled with one value.", example: "full([2, 2], 0.5)") { a in
            box(try Tensor.full(try a.shape("shape"), value: try a.float("value")))
        },
        Row(
            "arange(start, stop = nil, step = 1)",
            doc: "Evenly spaced values in [start, stop) (from 0 with one argument).",
            example: "arange(5)", arange),
        Row(
            "linspace(start, end, count)",
            doc: "count values from start to end, both included.",
            example: "linspace(0, 1, 5)"
        ) { a in
            box(try Tensor.linspace(try a.float("start"), try a.float("end"), count: try a.int("count")))
        },
        Row(
            "eye(n, m = nil)",
            doc: "The identity matrix (n × m).",
            example: "eye(3)"
        ) { a in box(try Tensor.eye(try a.int("n"), try a.intOrNil("m"))) },
        Row(
            "rand(shape, generator = nil)",
            doc: "Uniform random values in [0, 1) (the run's generator unless one is given).",
            example: "rand([4])"
        ) { a in box(try Tensor.rand(try a.shape("shape"), generator: try a.generator())) },
        Row(
            "randn(shape, generator = nil)",
            doc: "Standard normal random values.",
            example: "randn([2, 3], generator: generator(1))"
        ) { a in
            box(try Tensor.randn(try a.shape("shape"), generator: try a.generator()))
        },
        Row(
            "normal(shape, mean = 0.0, std = 1.0, generator = nil)",
            doc: "Normal random values with a mean and a standard deviation.",
            example: "normal([3], mean: 1.0, std: 0.1)"
        ) { a in
            box(
                try Tensor.normal(
                    try a.shape("shape"), mean: try a.float("mean"), std: try a.float("std"),
                    generator: try a.generator()))
        },
        Row(
            "uniform(shape, low = 0.0, high = 1.0, generator = nil)", doc: "Uniform random values in [low, high).",
            example: "uniform([3], low: -1.0, high: 1.0)"
        ) { a in
            box(
                try Tensor.uniform(
                    try a.shape("shape"), low: try a.float("low"), high: try a.float("high"),
                    generator: try a.generator()))
        },
        Row(
            "randint(low, high, shape, generator = nil)",
            doc: "Random integers in [low, high).",
            example: "randint(0, 10, [5])"
        ) { a in
            box(
                try Tensor.randint(
                    try a.int("low"), try a.int("high"), shape: try a.shape("shape"), generator: try a.generator()))
        },
        Row(
            "bernoulli(shape, p = 0.5, generator = nil)",
            doc: "1 with probability p, else 0.",
            example: "bernoulli([8], p: 0.25)"
        ) { a in
            box(try Tensor.bernoulli(try a.shape("shape"), p: try a.float("p"), generator: try a.generator()))
        },
        Row(
            "generator(seed)",
            doc: "A random generator of its own, for rand, randn, randint, bernoulli, dropout and script transforms.",
            example: "let g = generator(7); randn([2], generator: g)"
        ) { a in .host(GeneratorBox(Generator(seed: try a.seed()))) },
        Row(
            "memory()", doc: "Memory in bytes: {rss: resident now, peak: resident at most, tensors: held by tensors}.",
            example: "memory().tensors"
        ) { _ in
            try record(["rss": .int(Memory.residentBytes), "peak": .int(Memory.peakResidentBytes),
                        "tensors": .int(Memory.tensorBytes)])
        },
        Row(
            "manual_seed(n)", doc: "Reseeds the run's generator: every later draw that is not seeded follows n.",
            example: "manual_seed(0)", manualSeed),
        Row(
            "no_grad(f)", doc: "Calls f() without recording gradients.",
            example: "no_grad(fn() => (w * 2).sum()).requires_grad  # false"
        ) { a in
            try withNoGrad { try a.interpreter.callValue(try a.callable("f"), []) }
        },
        Row(
            "cat(tensors, axis = 0)",
            doc: "Joins tensors along an existing axis.",
            example: "cat([x, x], axis: 1).shape"
        ) { a in
            box(try Tensor.concat(try tensors(a, "tensors"), axis: try a.int("axis")))
        },
        Row(
            "stack(tensors, axis = 0)",
            doc: "Stacks tensors of one shape along a new axis.",
            example: "stack([x, x]).shape"
        ) { a in
            box(try Tensor.stack(try tensors(a, "tensors"), axis: try a.int("axis")))
        },
        Row(
            "where(condition, a, b)",
            doc: "a where condition is non-zero, else b (broadcasting).",
            example: "where(x > 0, x, 0)"
        ) { a in
            box(try Tensor.where(try a.tensorLike("condition"), try a.tensorLike("a"), try a.tensorLike("b")))
        },
        Row(
            "matmul(a, b)",
            doc: "The matrix product (batched over leading axes), as a @ b.",
            example: "matmul(x, x)"
        ) { a in
            box(try a.tensor("a").matmul(try a.tensor("b")))
        },
        Row(
            "one_hot(labels, classes)",
            doc: "One-hot rows [N, classes] for a list or tensor of labels.",
            example: "one_hot([0, 2], 3)", oneHot),
        Row("softmax(x, axis = -1)", doc: "exp(x) / Σ exp(x) along an axis.", example: "softmax(x, axis: 1)") { a in
            box(try a.tensor("x").softmax(axis: try a.int("axis")))
        },
        Row("log_softmax(x, axis = -1)", doc: "x − log Σ exp(x) along an axis.", example: "log_softmax(x)") { a in
            box(try a.tensor("x").logSoftmax(axis: try a.int("axis")))
        },
        Row(
            "allclose(a, b, rtol = 1e-05, atol = 1e-08)",
            doc: "Whether |a − b| ≤ atol + rtol·|b| everywhere (broadcasting).",
            example: "allclose(x, x + 1e-9)"
        ) { a in
            .bool(
                try a.tensorLike("a").allClose(
                    try a.tensorLike("b"), rtol: try a.float("rtol"), atol: try a.float("atol")))
        },
    ]

    static let types: [HostType] = [TensorBox.type, GeneratorBox.type]

    // MARK: Functions

    static func tensor(_ a: Args) throws -> Value {
        let t = try nested(try a.value("values"))
        t.requiresGrad = try a.bool("requires_grad")
        return box(t)
    }

    /// A tensor from a number or nested lists of numbers. Iterative: the lists may be nested as
    /// deep as a tensor has axes (64), and deeper ones are an error, not a stack overflow.
    static func nested(_ v: Value) throws -> Tensor {
        var shape: [Int] = []
        var probe = v
        while case .list(let l) = probe {
            shape.append(l.items.count)
            guard shape.count <= Tensor.maxRank else {
                let r = Tensor.maxRank
                throw ScriptError("tensor(): lists nested more than \(r) deep; a tensor has at most \(r) axes")
            }
            guard let first = l.items.first else { break }
            probe = first
        }
        // The size the first path gives is checked before anything is built (a list shared at every
        // level, [x, x] nested 40 deep, would otherwise fill memory).
        let count = try Memory.checkedCount(shape, op: "tensor")
        var values: [Float] = []
        values.reserveCapacity(count)
        var stack: [(Value, Int)] = [(v, 0)]
        var steps = 0
        while let (x, depth) = stack.popLast() {
            steps += 1
            if steps & 0xFFFFF == 0 { try Interruption.check("tensor()") }
            if depth == shape.count {
                switch x {
                case .int(let n): values.append(Float(n))
                case .float(let d): values.append(Float(d))
                case .bool(let b): values.append(b ? 1 : 0)
                case .host(let t as TensorBox) where t.tensor.count == 1: values.append(t.tensor.item)
                default:
                    throw ScriptError(
                        "tensor(): values must hold only numbers and lists, found \(x.typeName) at depth \(depth)")
                }
                continue
            }
            guard case .list(let l) = x, l.items.count == shape[depth] else {
                let n = shape[depth]
                throw ScriptError(
                    "tensor(): ragged nested lists: at depth \(depth) every list needs \(n) items, as the first has"
                )
            }
            for item in l.items.reversed() { stack.append((item, depth + 1)) }
        }
        return try Tensor(values, shape: shape)
    }

    static func arange(_ a: Args) throws -> Value {
        let (start, stop) =
            try a.isNil("stop") ? (0, try a.number("start")) : (try a.number("start"), try a.number("stop"))
        return box(try Tensor.arange(Float(start), Float(stop), step: try a.float("step")))
    }

    static func manualSeed(_ a: Args) throws -> Value {
        let seed = UInt64(truncatingIfNeeded: try a.int("n"))
        a.run.generator = Generator(seed: seed)
        Random.seed(seed)
        return .nil_
    }

    static func oneHot(_ a: Args) throws -> Value {
        let labels = try indexTensor(try a.value("labels"), "one_hot(): argument 'labels'")
        return box(try labels.oneHot(classes: try a.int("classes")))
    }

    static func tensors(_ a: Args, _ name: String) throws -> [Tensor] {
        try a.list(name).enumerated().map { k, v in
            guard let t = try TensorBox.operand(v) else {
                throw a.fail(name, "item \(k) is \(v.typeName), not a tensor")
            }
            return t
        }
    }

    /// Integer positions as a tensor: from a tensor, or a list of ints.
    static func indexTensor(_ v: Value, _ what: String) throws -> Tensor {
        switch v {
        case .host(let t as TensorBox): return t.tensor
        case .list(let l):
            let ints = try l.items.map { item -> Float in
                guard case .int(let n) = item else {
                    throw ScriptError("\(what) must hold ints, found \(item.typeName)")
                }
                // Positions travel as Float32, exact up to 2^24.
                guard abs(n) <= 1 << 24 else { throw ScriptError("\(what) holds \(n), beyond any tensor's axis") }
                return Float(n)
            }
            return try Tensor(ints, shape: [ints.count])
        default: throw ScriptError("\(what) must be a list of ints or a tensor, got \(v.typeName)")
        }
    }
}

func box(_ t: Tensor) -> Value { .host(TensorBox(t)) }

/// A random generator a script owns.
final class GeneratorBox: HostObject, TypedHost {
    override var hostType: HostType { GeneratorBox.type }
    let generator: Generator
    init(_ generator: Generator) { self.generator = generator }
    static let type: HostType = {
        let t = HostType(
            "generator",
            doc: "A seeded random generator: pass it as generator: to random functions; g.uniform(), g.int(n).")
        t.method(
            GeneratorBox.self, "uniform(low = 0.0, high = 1.0)", doc: "A number uniform in [low, high).",
            example: "generator(1).uniform(0, 10)"
        ) { g, a in
            let lo = try a.number("low")
            let hi = try a.number("high")
            return .float(lo + (hi - lo) * g.generator.nextDouble())
        }
        t.method(
            GeneratorBox.self, "int(n)",
            doc: "An integer uniform in [0, n).",
            example: "generator(1).int(10)"
        ) { g, a in
            let n = try a.int("n")
            guard n > 0 else { throw a.fail("n", "must be positive, got \(n)") }
            return .int(g.generator.int(below: n))
        }
        t.method(
            GeneratorBox.self, "normal()",
            doc: "A standard normal number.",
            example: "generator(1).normal()"
        ) { g, _ in
            .float(Double(g.generator.normal()))
        }
        t.method(
            GeneratorBox.self, "beta(a, b)",
            doc: "A Beta(a, b) number (mixup's λ).",
            example: "generator(1).beta(0.2, 0.2)"
        ) { g, a in
            let (x, y) = (try a.number("a"), try a.number("b"))
            guard x > 0, y > 0, x.isFinite, y.isFinite else {
                throw a.fail("a", "and b must be positive, got \(x) and \(y)")
            }
            return .float(g.generator.beta(x, y))
        }
        t.method(
            GeneratorBox.self, "permutation(n)",
            doc: "A random order of 0 ..< n, as a list.",
            example: "generator(1).permutation(5)"
        ) { g, a in
            ints(try permutationIndices(try a.int("n"), generator: g.generator))
        }
        t.describe(GeneratorBox.self) { _ in "generator" }
        return t
    }()
}
