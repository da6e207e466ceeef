/// Creating tensors: constants, ranges, nested arrays and seeded random draws.
extension Tensor {
    /// A tensor of `shape` where every element is computed by `f(flatIndex)`.
    static func generate(_ shape: [Int], op: String, _ f: (Int) -> Float) throws -> Tensor {
        let t = try Tensor(uninitialized: shape, op: op)
        let p = t.storage.pointer
        for i in 0..<t.count { p[i] = f(i) }
        return t
    }

    /// A constant tensor. Non-throwing for internal use with shapes already known to be valid.
    static func full(_ shape: [Int], _ value: Float) -> Tensor {
        let n = shape.reduce(1, *)
        let t = Tensor(shape: shape, storage: Storage(uninitialized: n))
        t.storage.pointer.initialize(repeating: value, count: n)
        return t
    }

    public static func full(_ shape: [Int], value: Float) throws -> Tensor {
        let t = try Tensor(uninitialized: shape, op: "full")
        t.storage.pointer.initialize(repeating: value, count: t.count)
        return t
    }

    public static func zeros(_ shape: [Int]) throws -> Tensor { try full(shape, value: 0) }
    public static func ones(_ shape: [Int]) throws -> Tensor { try full(shape, value: 1) }

    /// start, start + step, … up to but excluding `end`.
    public static func arange(_ start: Float, _ end: Float, step: Float = 1) throws -> Tensor {
        guard step != 0, step.isFinite, start.isFinite, end.isFinite else {
            throw TensorError("arange", "needs finite bounds and a non-zero step, got start \(start), end \(end), step \(step)")
        }
        let count = ((Double(end) - Double(start)) / Double(step)).rounded(.up)
        guard count.isFinite, count < Double(1 << 40) else {
            throw TensorError("arange", "from \(start) to \(end) by \(step) would have \(count) elements")
        }
        let n = Swift.max(0, Int(count))
        return try generate([n], op: "arange") { start + Float($0) * step }
    }

    /// The n×m identity (ones on the diagonal).
    public static func eye(_ n: Int, _ m: Int? = nil) throws -> Tensor {
        let cols = m ?? n
        return try generate([n, cols], op: "eye") { i in i / Swift.max(cols, 1) == i % Swift.max(cols, 1) ? 1 : 0 }
    }

    /// `count` evenly spaced values from `start` to `end`, both included.
    public static func linspace(_ start: Float, _ end: Float, count: Int) throws -> Tensor {
        guard count >= 0 else { throw TensorError("linspace", "count must be non-negative, got \(count)") }
        let step = count > 1 ? (end - start) / Float(count - 1) : 0
        return try generate([count], op: "linspace") { i in i == count - 1 && count > 1 ? end : start + Float(i) * step }
    }

    /// A tensor from nested arrays of numbers (`[[1, 2], [3, 4]]`); rows must be of equal length.
    public static func nested(_ value: Any) throws -> Tensor {
        var shape: [Int] = []
        var probe: Any = value
        while let a = probe as? [Any] {
            shape.append(a.count)
            guard let first = a.first else { break }
            probe = first
        }
        var values: [Float] = []
        func walk(_ v: Any, depth: Int, path: String) throws {
            if depth == shape.count {
                guard let x = number(v) else { throw TensorError("tensor", "element at \(path) is not a number") }
                values.append(x)
                return
            }
            guard let a = v as? [Any], a.count == shape[depth] else {
                throw TensorError("tensor", "ragged nested list: element at \(path) should be a list of \(shape[depth])")
            }
            for (i, x) in a.enumerated() { try walk(x, depth: depth + 1, path: path + "[\(i)]") }
        }
        try walk(value, depth: 0, path: "")
        return try Tensor(values, shape: shape)
    }

    private static func number(_ v: Any) -> Float? {
        switch v {
        case let x as Float: return x
        case let x as Double: return Float(x)
        case let x as Int: return Float(x)
        case let x as Bool: return x ? 1 : 0
        default: return nil
        }
    }

    // MARK: Random draws (the global generator unless one is given)

    /// Uniform in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, generator: Generator = Random.global) throws -> Tensor {
        guard low <= high, low.isFinite, high.isFinite else {
            throw TensorError("uniform", "needs finite low <= high, got low \(low), high \(high)")
        }
        return try generate(shape, op: "uniform") { _ in low + (high - low) * generator.nextFloat() }
    }

    public static func rand(_ shape: [Int], generator: Generator = Random.global) throws -> Tensor {
        try uniform(shape, generator: generator)
    }

    /// Normal with the given mean and standard deviation.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, generator: Generator = Random.global) throws -> Tensor {
        guard std >= 0, std.isFinite, mean.isFinite else {
            throw TensorError("normal", "needs a finite mean and std >= 0, got mean \(mean), std \(std)")
        }
        return try generate(shape, op: "normal") { _ in mean + std * generator.normal() }
    }

    public static func randn(_ shape: [Int], generator: Generator = Random.global) throws -> Tensor {
        try normal(shape, generator: generator)
    }

    /// 1 with probability p, else 0.
    public static func bernoulli(_ shape: [Int], p: Float, generator: Generator = Random.global) throws -> Tensor {
        guard p >= 0 && p <= 1 else { throw TensorError("bernoulli", "probability must be in [0, 1], got \(p)") }
        return try generate(shape, op: "bernoulli") { _ in generator.nextFloat() < p ? 1 : 0 }
    }

    /// Integers uniform in low..<high.
    public static func randint(_ low: Int, _ high: Int, shape: [Int], generator: Generator = Random.global) throws -> Tensor {
        guard high > low else { throw TensorError("randint", "needs low < high, got low \(low), high \(high)") }
        let (span, overflow) = high.subtractingReportingOverflow(low)
        guard !overflow, span <= 1 << 24, Swift.abs(low) <= 1 << 24, Swift.abs(high) <= 1 << 24 else { throw TensorError("randint", "range \(low)..<\(high) is wider than Float32 holds exactly (2^24)") }
        return try generate(shape, op: "randint") { _ in Float(low + generator.int(below: high - low)) }
    }

    /// A random permutation of 0..<n (Fisher–Yates).
    public static func permutation(_ n: Int, generator: Generator = Random.global) throws -> Tensor {
        try Tensor(permutationIndices(n, generator: generator).map(Float.init), shape: [n])
    }
}

/// A random permutation of 0..<n as integers (for data order).
public func permutationIndices(_ n: Int, generator: Generator) throws -> [Int] {
    guard n >= 0 else { throw TensorError("permutation", "size must be non-negative, got \(n)") }
    _ = try Memory.elementCount([n, 2], op: "permutation")  // 8-byte indices: fail early, not out of memory
    var p = Array(0..<n)
    if n > 1 {
        for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, generator.int(below: i + 1)) }
    }
    return p
}
