import CShims

/// How a tensor's storage orders its elements. Plain is row-major (NCHW for images). Blocked16 is
/// oneDNN's nChw16c for FP32 on AVX-512: [N, C/16, H, W, 16], sixteen channels innermost, which
/// its convolutions read and write without a reorder. Blocked16BF16 is the same order in BF16, two
/// bytes an element, as a low-precision convolution leaves its output and its input's gradient.
/// Elementwise ops work on blocked tensors as they are when both operands are blocked; per-channel
/// ops (batch norm) index them directly.
enum Layout: Equatable {
    case plain
    case blocked16
    case blocked16BF16

    var isBlocked: Bool { self != .plain }

    /// Whether a tensor of `shape` can be held this way (no padding: channels a multiple of 16).
    func suits(_ shape: [Int]) -> Bool {
        switch self {
        case .plain: return true
        case .blocked16, .blocked16BF16: return shape.count == 4 && shape[1] % 16 == 0 && shape[1] > 0
        }
    }

    /// The Floats of storage that hold `count` elements this way.
    func storageFloats(_ count: Int) -> Int { self == .blocked16BF16 ? (count + 1) / 2 : count }

    /// Copies `count(shape)` elements held this way into row-major FP32.
    func reorder(_ src: UnsafePointer<Float>, toPlain dst: UnsafeMutablePointer<Float>, shape: [Int]) {
        switch self {
        case .plain:
            dst.update(from: src, count: shape.reduce(1, *))
        case .blocked16, .blocked16BF16:
            let (n, cb, s) = (shape[0], shape[1] / 16, shape[2] * shape[3])
            let bf16 = self == .blocked16BF16, raw = UnsafeRawPointer(src)  // BF16: two bytes an element
            parallelFor(n * cb, grain: 1) { r in
                for bc in r {
                    let b = bc / cb, blk = bc % cb
                    for j in 0..<16 {
                        let to = dst + (b * cb * 16 + blk * 16 + j) * s, at = bc * s * 16 + j
                        if bf16 {
                            for i in 0..<s { to[i] = floatFromBFloat16Bits(raw.load(fromByteOffset: 2 * (at + i * 16), as: UInt16.self)) }
                        } else {
                            for i in 0..<s { to[i] = src[at + i * 16] }
                        }
                    }
                }
            }
        }
    }

    /// Element `i` of storage held this way, as FP32.
    @inline(__always)
    func load(_ raw: UnsafeRawPointer, _ i: Int) -> Float {
        self == .blocked16BF16 ? floatFromBFloat16Bits(raw.load(fromByteOffset: 2 * i, as: UInt16.self))
            : raw.load(fromByteOffset: 4 * i, as: Float.self)
    }

    /// The bit a C kernel's `types` mask sets for an operand held this way.
    func bf16Bit(_ bit: Int) -> UInt32 { self == .blocked16BF16 ? UInt32(bit) : 0 }
}

extension Tensor {
    /// A copy held in `layout` (FP32 or BF16 blocks, rounding to BF16), detached from the graph: how
    /// tests and benchmarks make the tensors a convolution would leave. nil if the shape does not suit.
    func reordered(to layout: Layout) -> Tensor? {
        guard layout.suits(shape) else { return nil }
        let src = storage.pointer, out = Tensor(uninitialized: shape, count: count, layout: layout)
        guard layout != .plain else { out.heldStorage.pointer.update(from: src, count: count); return out }
        let (n, cb, s) = (shape[0], shape[1] / 16, shape[2] * shape[3]), dst = out.heldStorage.pointer
        let raw = UnsafeMutableRawPointer(dst)  // BF16: two bytes an element
        for bc in 0..<(n * cb) {
            let b = bc / cb, blk = bc % cb
            for j in 0..<16 {
                let from = src + (b * cb * 16 + blk * 16 + j) * s, at = bc * s * 16 + j
                for i in 0..<s {
                    if layout == .blocked16BF16 {
                        raw.storeBytes(of: bfloat16Bits(from[i]), toByteOffset: 2 * (at + i * 16), as: UInt16.self)
                    } else {
                        dst[at + i * 16] = from[i]
                    }
                }
            }
        }
        return out
    }
}
