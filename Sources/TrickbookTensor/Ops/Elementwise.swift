import CShims
import Foundation

// Elementwise ops with NumPy broadcasting. Each op's forward kernel and its backward sit together.

/// The shape two shapes broadcast to (aligned from the right; a size 1 stretches).
func broadcastShape(_ a: [Int], _ b: [Int], op: String) throws -> [Int] {
    let r = Swift.max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let x = i < r - a.count ? 1 : a[i - (r - a.count)]
        let y = i < r - b.count ? 1 : b[i - (r - b.count)]
        guard x == y || x == 1 || y == 1 else {
            throw TensorError(op, "cannot broadcast shapes \(fmt(a)) and \(fmt(b))")
        }
        out[i] = x == 1 ? y : x
    }
    return out
}

/// Element strides of `shape` read as `out` (0 along broadcast axes).
func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
    var strides = [Int](repeating: 0, count: out.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let j = i + out.count - shape.count
        strides[j] = shape[i] == 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

/// Offsets into two broadcast operands (strides sa, sb) of the element at flat index i over the
/// first `rank` axes of `shape`.
@inline(__always)
func broadcastOffsets(_ i: Int, _ shape: [Int], rank: Int, _ sa: [Int], _ sb: [Int]) -> (Int, Int) {
    var rem = i, offA = 0, offB = 0
    for d in stride(from: rank - 1, through: 0, by: -1) {
        let idx = rem % shape[d]
        rem /= shape[d]
        offA += idx * sa[d]
        offB += idx * sb[d]
    }
    return (offA, offB)
}

/// out[i] = f(a[i'], b[i'']) over the broadcast shape.
@inline(__always)
func binaryKernel(_ a: Tensor, _ b: Tensor, op: String, fast: FastBinary? = nil, _ f: (Float, Float) -> Float) throws -> Tensor {
    if let fast, a.shape == b.shape, a.layout.isBlocked, b.layout.isBlocked {
        // Both blocked (FP32 or BF16, the same order): elementwise, the layout does not matter. The
        // result is held as a is.
        let out = Tensor(uninitialized: a.shape, count: a.count, layout: a.layout)
        let pa = a.heldStorage.pointer, pb = b.heldStorage.pointer, po = out.heldStorage.pointer
        let types = a.layout.bf16Bit(TB_A_BF16) | b.layout.bf16Bit(TB_B_BF16) | out.layout.bf16Bit(TB_O_BF16)
        parallelFor(a.count, grain: 1 << 15) { r in fast.apply(pa, pb, po, r, types: types) }
        return out
    }
    let shape = a.shape == b.shape ? a.shape : try broadcastShape(a.shape, b.shape, op: op)
    let out = try Tensor(uninitialized: shape, op: op)
    let pa = a.storage.pointer, pb = b.storage.pointer, po = out.storage.pointer, n = out.count
    if a.count == n && b.count == n, let fast {
        parallelFor(n, grain: 1 << 15) { r in fast.apply(pa, pb, po, r) }
    } else if a.count == n && b.count == n {
        parallelFor(n, grain: 1 << 15) { r in for i in r { po[i] = f(pa[i], pb[i]) } }
    } else if b.count == 1 && a.count == n {
        let y = pb[0]
        parallelFor(n, grain: 1 << 15) { r in for i in r { po[i] = f(pa[i], y) } }
    } else if a.count == 1 && b.count == n {
        let x = pa[0]
        parallelFor(n, grain: 1 << 15) { r in for i in r { po[i] = f(x, pb[i]) } }
    } else if n > 0 {
        let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        let inner = shape[shape.count - 1], ia = sa[shape.count - 1], ib = sb[shape.count - 1]
        let outer = n / inner
        parallelFor(outer, grain: Swift.max(1, (1 << 15) / inner)) { r in
            for o in r {
                let (offA, offB) = broadcastOffsets(o, shape, rank: shape.count - 1, sa, sb)
                let base = o * inner
                for j in 0..<inner { po[base + j] = f(pa[offA + j * ia], pb[offB + j * ib]) }
            }
        }
    }
    return out
}

/// The elementwise ops of every training step, as C loops that run in AVX-512 where the CPU has it
/// (a closure called per element cost ResNet-20 a quarter of its step; Swift's own loops stay SSE).
enum FastBinary {
    case add, sub, mul, reluGrad, addReLU, relu

    @inline(__always)
    func apply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ r: Range<Int>,
               types: UInt32 = 0) {
        let op: tb_binary_op
        switch self {
        case .add: op = TB_ADD
        case .sub: op = TB_SUB
        case .mul: op = TB_MUL
        case .reluGrad: op = TB_RELU_GRAD  // a: the gradient, b: relu's input or output
        case .addReLU: op = TB_ADD_RELU
        case .relu: op = TB_RELU  // b unread
        }
        tb_binary(op, a, b, o, types, Int64(r.lowerBound), Int64(r.upperBound))
    }
}

/// out[i] = f(x[i]).
@inline(__always)
func unaryKernel(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    let out = Tensor(shape: x.shape, storage: Storage(uninitialized: x.count))
    let px = x.storage.pointer, po = out.storage.pointer
    parallelFor(x.count, grain: 1 << 14) { r in for i in r { po[i] = f(px[i]) } }
    return out
}

extension Tensor {
    /// Sums a broadcast gradient back to `shape` (the input's shape before broadcasting).
    func sumTo(_ target: [Int]) throws -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var axes = Array(0..<lead)
        for (i, d) in target.enumerated() where d == 1 && shape[lead + i] != 1 { axes.append(lead + i) }
        return try sum(axes: axes, keepdims: true).reshaped(target)
    }

    // MARK: Arithmetic

    public static func + (a: Tensor, b: Tensor) throws -> Tensor {
        try binaryKernel(a, b, op: "add", fast: .add) { $0 + $1 }.recorded("add", [a, b]) { g, _ in
            [try g.sumTo(a.shape), try g.sumTo(b.shape)]
        }
    }

    public static func - (a: Tensor, b: Tensor) throws -> Tensor {
        try binaryKernel(a, b, op: "sub", fast: .sub) { $0 - $1 }.recorded("sub", [a, b]) { g, _ in
            [try g.sumTo(a.shape), try g.neg().sumTo(b.shape)]
        }
    }

    public static func * (a: Tensor, b: Tensor) throws -> Tensor {
        try binaryKernel(a, b, op: "mul", fast: .mul) { $0 * $1 }.recorded("mul", [a, b]) { g, _ in
            [a.requiresGrad ? try (g * b).sumTo(a.shape) : nil,
             b.requiresGrad ? try (g * a).sumTo(b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) throws -> Tensor {
        try binaryKernel(a, b, op: "div") { $0 / $1 }.recorded("div", [a, b]) { g, out in
            [a.requiresGrad ? try (g / b).sumTo(a.shape) : nil,
             b.requiresGrad ? try (g * out / b).neg().sumTo(b.shape) : nil]
        }
    }

    /// a ** b. The gradient for b uses log(a) and is taken as 0 where a <= 0.
    public func pow(_ exponent: Tensor) throws -> Tensor {
        let a = self, b = exponent
        return try binaryKernel(a, b, op: "pow") { Foundation.pow($0, $1) }.recorded("pow", [a, b]) { g, out in
            [a.requiresGrad ? try (g * b * binaryKernel(a, b, op: "pow") { Foundation.pow($0, $1 - 1) }).sumTo(a.shape) : nil,
             b.requiresGrad ? try (g * binaryKernel(out, a, op: "pow") { y, x in x > 0 ? y * Foundation.log(x) : 0 }).sumTo(b.shape) : nil]
        }
    }

    public func pow(_ exponent: Float) throws -> Tensor { try pow(Tensor(scalar: exponent)) }

    /// Elementwise larger of the two; ties send the gradient to `self`.
    public func maximum(_ other: Tensor) throws -> Tensor {
        let a = self, b = other
        return try binaryKernel(a, b, op: "maximum") { Swift.max($0, $1) }.recorded("maximum", [a, b]) { g, _ in
            let mask = try binaryKernel(a, b, op: "maximum") { $0 >= $1 ? 1 : 0 }
            return [try (g * mask).sumTo(a.shape), try (g * (1 - mask)).sumTo(b.shape)]
        }
    }

    /// Elementwise smaller of the two; ties send the gradient to `self`.
    public func minimum(_ other: Tensor) throws -> Tensor {
        let a = self, b = other
        return try binaryKernel(a, b, op: "minimum") { Swift.min($0, $1) }.recorded("minimum", [a, b]) { g, _ in
            let mask = try binaryKernel(a, b, op: "minimum") { $0 <= $1 ? 1 : 0 }
            return [try (g * mask).sumTo(a.shape), try (g * (1 - mask)).sumTo(b.shape)]
        }
    }

    // Scalars on either side.
    public static func + (a: Tensor, b: Float) throws -> Tensor { try a + Tensor(scalar: b) }
    public static func + (a: Float, b: Tensor) throws -> Tensor { try Tensor(scalar: a) + b }
    public static func - (a: Tensor, b: Float) throws -> Tensor { try a - Tensor(scalar: b) }
    public static func - (a: Float, b: Tensor) throws -> Tensor { try Tensor(scalar: a) - b }
    public static func * (a: Tensor, b: Float) throws -> Tensor { try a * Tensor(scalar: b) }
    public static func * (a: Float, b: Tensor) throws -> Tensor { try Tensor(scalar: a) * b }
    public static func / (a: Tensor, b: Float) throws -> Tensor { try a / Tensor(scalar: b) }
    public static func / (a: Float, b: Tensor) throws -> Tensor { try Tensor(scalar: a) / b }
    public static prefix func - (a: Tensor) -> Tensor { a.neg() }

    // MARK: Unary

    public func neg() -> Tensor {
        unaryKernel(self) { -$0 }.recorded("neg", [self]) { g, _ in [g.neg()] }
    }

    public func exp() -> Tensor {
        unaryKernel(self) { Foundation.exp($0) }.recorded("exp", [self]) { g, out in [try g * out] }
    }

    /// Natural logarithm (-inf at 0, nan below).
    public func log() -> Tensor {
        let x = self
        return unaryKernel(x) { Foundation.log($0) }.recorded("log", [x]) { g, _ in [try g / x] }
    }

    public func sqrt() -> Tensor {
        unaryKernel(self) { $0.squareRoot() }.recorded("sqrt", [self]) { g, out in [try g / (out * 2)] }
    }

    /// |x|, with gradient sign(x) (0 at 0).
    public func abs() -> Tensor {
        let x = self
        return unaryKernel(x) { Swift.abs($0) }.recorded("abs", [x]) { g, _ in
            [try g * unaryKernel(x) { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }]
        }
    }

    /// Limits values to [low, high]; the gradient passes where low <= x <= high (as in PyTorch).
    public func clamp(min low: Float = -.infinity, max high: Float = .infinity) throws -> Tensor {
        guard !(low > high) else { throw TensorError("clamp", "min \(low) is greater than max \(high)") }
        let x = self
        return unaryKernel(x) { Swift.min(Swift.max($0, low), high) }.recorded("clamp", [x]) { g, _ in
            [try g * unaryKernel(x) { $0 >= low && $0 <= high ? 1 : 0 }]
        }
    }

    // MARK: Comparisons (results of 0 and 1, not differentiable)

    public func eq(_ o: Tensor) throws -> Tensor { try binaryKernel(self, o, op: "eq") { $0 == $1 ? 1 : 0 } }
    public func ne(_ o: Tensor) throws -> Tensor { try binaryKernel(self, o, op: "ne") { $0 != $1 ? 1 : 0 } }
    public func lt(_ o: Tensor) throws -> Tensor { try binaryKernel(self, o, op: "lt") { $0 < $1 ? 1 : 0 } }
    public func le(_ o: Tensor) throws -> Tensor { try binaryKernel(self, o, op: "le") { $0 <= $1 ? 1 : 0 } }
    public func gt(_ o: Tensor) throws -> Tensor { try binaryKernel(self, o, op: "gt") { $0 > $1 ? 1 : 0 } }
    public func ge(_ o: Tensor) throws -> Tensor { try binaryKernel(self, o, op: "ge") { $0 >= $1 ? 1 : 0 } }

    /// Elements of `a` where `condition` is non-zero, else of `b`; all three broadcast together.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        let shape = try broadcastShape(try broadcastShape(condition.shape, a.shape, op: "where"), b.shape, op: "where")
        let c = try condition.broadcast(to: shape), x = try a.broadcast(to: shape), y = try b.broadcast(to: shape)
        let out = try Tensor(uninitialized: shape, op: "where")
        let pc = c.storage.pointer, px = x.storage.pointer, py = y.storage.pointer, po = out.storage.pointer
        for i in 0..<out.count { po[i] = pc[i] != 0 ? px[i] : py[i] }
        return out.recorded("where", [a, b]) { g, _ in
            let mask = unaryKernel(c) { $0 != 0 ? 1 : 0 }
            return [try (g * mask).sumTo(a.shape), try (g * (1 - mask)).sumTo(b.shape)]
        }
    }

    /// This tensor materialised at a broadcast shape (differentiable).
    public func broadcast(to shape: [Int]) throws -> Tensor {
        if self.shape == shape { return self }
        _ = try Memory.elementCount(shape, op: "broadcast")  // sizes non-negative, no overflow, memory there
        let target = try broadcastShape(self.shape, shape, op: "broadcast")
        guard target == shape else {
            throw TensorError("broadcast", "cannot broadcast shape \(fmt(self.shape)) to \(fmt(shape))")
        }
        let x = self
        let zeros = Tensor.full(shape, 0)
        return try binaryKernel(zeros, x.detached(), op: "broadcast") { $1 }.recorded("broadcast", [x]) { g, _ in
            [try g.sumTo(x.shape)]
        }
    }
}
