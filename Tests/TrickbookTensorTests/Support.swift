import Testing
@testable import TrickbookTensor

/// A tensor of `shape` with values uniform in [low, high), from its own generator.
func random(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) throws -> Tensor {
    try Tensor.uniform(shape, low: low, high: high, generator: Generator(seed: seed))
}

/// Values at least `gap` away from zero (for kinks at 0: relu, abs).
func awayFromZero(_ shape: [Int], seed: UInt64, gap: Float = 0.1) throws -> Tensor {
    let t = try random(shape, seed: seed)
    return try Tensor(t.scalars.map { $0 < 0 ? $0 - gap : $0 + gap }, shape: shape)
}

/// Distinct values spaced at least 0.01 apart, in random order (for max and its ties).
func distinct(_ shape: [Int], seed: UInt64) throws -> Tensor {
    let n = shape.reduce(1, *)
    let p = try permutationIndices(n, generator: Generator(seed: seed))
    return try Tensor(p.map { Float($0) * 0.01 - Float(n) * 0.005 }, shape: shape)
}

func expectClose(_ a: [Float], _ b: [Float], atol: Float = 1e-5, rtol: Float = 1e-4, _ label: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(label): \(a.count) values vs \(b.count)", sourceLocation: sourceLocation)
    var worst = 0, worstErr: Float = -1
    for i in 0..<min(a.count, b.count) {
        let err = abs(a[i] - b[i]) - (atol + rtol * abs(b[i]))
        if !(err <= 0) && (err > worstErr || worstErr < 0 || err.isNaN) { worst = i; worstErr = err.isNaN ? .infinity : err }
    }
    if worstErr >= 0 && a.count == b.count {
        Issue.record("\(label): element \(worst) is \(a[worst]), expected \(b[worst])", sourceLocation: sourceLocation)
    }
}

/// Compares the gradients autodiff gives with central differences of L = Σ f(x)·R for a fixed
/// random R, for every element of every input.
func gradCheck(_ label: String, _ inputs: [Tensor], eps: Float = 1e-2, atol: Float = 3e-3, rtol: Float = 3e-3,
               sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) throws -> Tensor) throws {
    for x in inputs { x.requiresGrad = true; x.zeroGrad() }
    let y = try f(inputs)
    let r = try random(y.shape, seed: 99)
    try (y * r).sum().backward()
    func loss() throws -> Double {
        let out = try withNoGrad { try f(inputs) }
        return zip(out.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    for (k, x) in inputs.enumerated() {
        let analytic = x.grad?.scalars ?? [Float](repeating: 0, count: x.count)
        var numeric = [Float](repeating: 0, count: x.count)
        try x.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count {
                let v = p[i]
                p[i] = v + eps
                let up = try loss()
                p[i] = v - eps
                let down = try loss()
                p[i] = v
                numeric[i] = Float((up - down) / Double(2 * eps))
            }
        }
        expectClose(analytic, numeric, atol: atol, rtol: rtol, "\(label): gradient of input \(k) \(x.shape)", sourceLocation: sourceLocation)
    }
}

/// Expects `body` to throw a TensorError whose text contains every fragment.
func expectError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error containing \(fragments)", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        for f in fragments where !text.contains(f) {
            Issue.record("error '\(text)' does not mention '\(f)'", sourceLocation: sourceLocation)
        }
    }
}
