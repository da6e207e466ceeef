/// How a tensor's storage orders its elements. Plain is row-major (NCHW for images). Blocked16 is
/// oneDNN's nChw16c for FP32 on AVX-512: [N, C/16, H, W, 16], sixteen channels innermost, which
/// its convolutions read and write without a reorder. Elementwise ops work on it as it is when
/// both operands share it; per-channel ops (batch norm) index it directly.
enum Layout: Equatable {
    case plain
    case blocked16

    /// Whether a tensor of `shape` can be held this way (no padding: channels a multiple of 16).
    func suits(_ shape: [Int]) -> Bool {
        switch self {
        case .plain: return true
        case .blocked16: return shape.count == 4 && shape[1] % 16 == 0 && shape[1] > 0
        }
    }

    /// Copies `count(shape)` elements held this way into row-major order.
    func reorder(_ src: UnsafePointer<Float>, toPlain dst: UnsafeMutablePointer<Float>, shape: [Int]) {
        switch self {
        case .plain:
            dst.update(from: src, count: shape.reduce(1, *))
        case .blocked16:
            let (n, cb, s) = (shape[0], shape[1] / 16, shape[2] * shape[3])
            parallelFor(n * cb, grain: 1) { r in
                for bc in r {
                    let b = bc / cb, blk = bc % cb
                    let from = src + bc * s * 16
                    for j in 0..<16 {
                        let to = dst + (b * cb * 16 + blk * 16 + j) * s
                        for i in 0..<s { to[i] = from[i * 16 + j] }
                    }
                }
            }
        }
    }
}
