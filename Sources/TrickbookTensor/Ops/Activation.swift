import CShims
import Foundation

// Activations, softmax and dropout. Each forward is followed by its gradient.

extension Tensor {
    /// max(x, 0); gradient 1 where x > 0.
    public func relu() -> Tensor {
        let x = self
        // Elementwise: a blocked input (FP32 or BF16) stays as it is held.
        let out = Tensor(uninitialized: x.shape, count: x.count, layout: x.layout)
        let px = x.heldStorage.pointer, po = out.heldStorage.pointer
        let types = x.layout.bf16Bit(TB_A_BF16) | x.layout.bf16Bit(TB_O_BF16)
        parallelFor(x.count, grain: 1 << 14) { r in FastBinary.relu.apply(px, px, po, r, types: types) }
        return out.recorded("relu", [x]) { g, _ in
            [try binaryKernel(g, x, op: "relu", fast: .reluGrad) { $1 > 0 ? $0 : 0 }]
        }
    }

    /// relu(self + b) in one pass, as a residual block ends; bitwise the same as the two ops. The
    /// gradient g·[out > 0] goes to both operands. Shapes that differ broadcast through the two ops.
    public func addReLU(_ b: Tensor) throws -> Tensor {
        guard shape == b.shape else { return try (self + b).relu() }
        let a = self
        return try binaryKernel(a, b, op: "add_relu", fast: .addReLU) { Swift.max($0 + $1, 0) }
            .recorded("add_relu", [a, b]) { g, out in
                let d = try binaryKernel(g, out, op: "add_relu", fast: .reluGrad) { $1 > 0 ? $0 : 0 }
                return [d, d]
            }
    }

    /// σ(x) = 1 / (1 + e^−x); σ' = σ(1 − σ).
    public func sigmoid() -> Tensor {
        unaryKernel(self) { 1 / (1 + Foundation.exp(-$0)) }.recorded("sigmoid", [self]) { g, y in
            [try binaryKernel(g, y, op: "sigmoid") { $0 * $1 * (1 - $1) }]
        }
    }

    /// tanh'(x) = 1 − tanh².
    public func tanh() -> Tensor {
        unaryKernel(self) { Foundation.tanh($0) }.recorded("tanh", [self]) { g, y in
            [try binaryKernel(g, y, op: "tanh") { $0 * (1 - $1 * $1) }]
        }
    }

    /// swish / SiLU: x·σ(x); derivative σ(x)·(1 + x·(1 − σ(x))).
    public func silu() -> Tensor {
        let x = self
        return unaryKernel(x) { $0 / (1 + Foundation.exp(-$0)) }.recorded("silu", [x]) { g, _ in
            [try binaryKernel(g, x, op: "silu") { gv, v in
                let s = 1 / (1 + Foundation.exp(-v))
                return gv * s * (1 + v * (1 - s))
            }]
        }
    }

    /// GELU with the exact erf: x·Φ(x); derivative Φ(x) + x·φ(x).
    public func gelu() -> Tensor {
        let x = self
        return unaryKernel(x) { 0.5 * $0 * (1 + Foundation.erf($0 * Float(0.5).squareRoot())) }.recorded("gelu", [x]) { g, _ in
            [try binaryKernel(g, x, op: "gelu") { gv, v in
                let cdf = 0.5 * (1 + Foundation.erf(v * Float(0.5).squareRoot()))
                let pdf = Foundation.exp(-0.5 * v * v) / (2 * Float.pi).squareRoot()
                return gv * (cdf + v * pdf)
            }]
        }
    }

    /// Runs `f(row, out, n, stride)` for every slice along `axis`.
    private func alongAxis(_ axis: Int, op: String, _ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: op)
        let (outer, n, inner) = splitAround(a)
        let out = Tensor(shape: shape, storage: Storage(uninitialized: count))
        let px = storage.pointer, po = out.storage.pointer
        parallelFor(outer * inner, grain: 64) { r in
            for oi in r {
                let o = oi / inner, i = oi % inner
                f(px + o * n * inner + i, po + o * n * inner + i, n, inner)
            }
        }
        return out
    }

    /// Softmax along `axis`, computed from x − max so that it never overflows.
    public func softmax(axis: Int = -1) throws -> Tensor {
        try alongAxis(axis, op: "softmax") { x, y, n, st in
            var m = -Float.infinity
            for k in 0..<n { m = Swift.max(m, x[k * st]) }
            var s: Float = 0
            for k in 0..<n { let e = Foundation.exp(x[k * st] - m); y[k * st] = e; s += e }
            for k in 0..<n { y[k * st] /= s }
        }.recorded("softmax", [self]) { g, y in
            // dx = y · (g − Σ g·y)
            let dot = try (g * y).sum(axis: axis, keepdims: true)
            return [try y * (g - dot)]
        }
    }

    /// log softmax along `axis`: x − max − log Σ e^(x − max).
    public func logSoftmax(axis: Int = -1) throws -> Tensor {
        try alongAxis(axis, op: "log_softmax") { x, y, n, st in
            var m = -Float.infinity
            for k in 0..<n { m = Swift.max(m, x[k * st]) }
            var s: Float = 0
            for k in 0..<n { s += Foundation.exp(x[k * st] - m) }
            let lse = m + Foundation.log(s)
            for k in 0..<n { y[k * st] = x[k * st] - lse }
        }.recorded("log_softmax", [self]) { g, y in
            // dx = g − softmax · Σ g
            [try g - y.exp() * g.sum(axis: axis, keepdims: true)]
        }
    }

    /// Inverted dropout: in training, zeroes each element with probability p and scales the rest
    /// by 1 / (1 − p); the identity otherwise.
    public func dropout(p: Float, training: Bool, generator: Generator = Random.global) throws -> Tensor {
        guard p >= 0 && p < 1 else { throw TensorError("dropout", "probability must be in [0, 1), got \(p)") }
        guard training && p > 0 else { return self }
        let scale = 1 / (1 - p)
        let mask = try Tensor.generate(shape, op: "dropout") { _ in generator.nextFloat() < p ? 0 : scale }
        return try self * mask
    }
}
