import CShims
import Foundation

/// Convolutions through oneDNN (forward, backward-data, backward-weights), when libdnnl.so.2 is
/// there: one set of primitives per shape, made at first use and kept. Tensors come in and go out
/// as plain NCHW FP32 or, between layers, as nChw16c blocks, FP32 or (in low precision) BF16 (see
/// `Layout`); reordered weights and oneDNN's scratchpad live in a workspace taken from the buffer
/// pool for the call.
public enum OneDNN {
    /// Whether oneDNN loaded (else the reason, for `doctor`).
    public static var available: Bool { tb_dnnl_load(Int32(clamping: Threads.count)) != 0 }
    public static var loadError: String {
        _ = available
        return String(cString: tb_dnnl_load_error())
    }
    /// The instruction set oneDNN runs on here.
    public static var isa: String { available ? String(cString: tb_dnnl_isa()) : "none" }
    /// Whether BF16 runs in hardware (AVX512_BF16 or AMX), not simulated.
    public static var hasBF16: Bool { ["avx512_core_bf16", "avx512_core_amx"].contains(isa) }

    /// Convolutions go through oneDNN unless TRICKBOOK_ONEDNN=0 (or it is missing).
    public static let enabledByDefault: Bool = {
        let off = ProcessInfo.processInfo.environment["TRICKBOOK_ONEDNN"] == "0"
        return !off && available
    }()
    /// Set for a task to compare the two paths (tests, benchmarks); on only where oneDNN loaded.
    @TaskLocal public static var override: Bool?
    public static var enabled: Bool { (override ?? enabledByDefault) && available }

    /// Set around a low-precision forward pass: convolutions then take BF16 inputs and weights
    /// (the weights reordered from their FP32 tensors) and give BF16 outputs, as PyTorch's autocast
    /// does; their backward passes give BF16 input gradients and FP32 weight gradients. Only where
    /// the CPU has BF16 instructions.
    @TaskLocal public static var lowPrecision = false
    /// Whether BF16 training runs in hardware here (else it is simulated by rounding).
    public static var bf16InHardware: Bool { enabled && hasBF16 }

    private struct Key: Hashable {
        let geometry: [Int]
        let bias: Bool
        let low: Bool
        let relu: Bool
    }

    /// Primitives by shape. A shape oneDNN refused is remembered as nil: the own kernels run it.
    /// At most `cacheLimit` shapes are kept (a script trying many image sizes must not pile up
    /// JIT code); the oldest goes first, freed once no call still holds it.
    nonisolated(unsafe) private static var cache: [Key: ConvPrimitives?] = [:]
    nonisolated(unsafe) private static var cacheOrder: [Key] = []
    static let cacheLimit = 256
    private static let lock = NSLock()

    /// With `relu`: a forward pass for inference alone that applies ReLU to its output.
    static func conv(_ g: ConvGeometry, bias: Bool, low: Bool = false, relu: Bool = false) -> ConvPrimitives? {
        guard enabled else { return nil }
        let key = Key(geometry: [g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups],
                      bias: bias, low: low, relu: relu)
        lock.lock()
        defer { lock.unlock() }
        if let known = cache[key] { return known }
        var shape = tb_conv_shape(
            n: Int64(g.n), c: Int64(g.c), h: Int64(g.h), w: Int64(g.w), o: Int64(g.o), kh: Int64(g.kh), kw: Int64(g.kw),
            sh: Int64(g.sh), sw: Int64(g.sw), ph: Int64(g.ph), pw: Int64(g.pw), dh: Int64(g.dh), dw: Int64(g.dw),
            groups: Int64(g.groups), oh: Int64(g.oh), ow: Int64(g.ow), bias: bias ? 1 : 0)
        var message = [CChar](repeating: 0, count: 256)
        // Where BF16 has only a slow fallback kernel (channels that do not fill 16-wide blocks), the
        // convolution runs in FP32: its BF16 neighbours hand it FP32 and take FP32 from it.
        let made = (tb_dnnl_conv_create(&shape, low ? 1 : 0, relu ? 1 : 0, &message, message.count)
            ?? (low ? tb_dnnl_conv_create(&shape, 0, relu ? 1 : 0, &message, message.count) : nil)).map(ConvPrimitives.init)
        if cacheOrder.count >= cacheLimit { cache[cacheOrder.removeFirst()] = nil }
        cache[key] = made
        cacheOrder.append(key)
        return made
    }

    /// How many shapes the cache holds now (for tests).
    static var cachedShapes: Int {
        lock.lock()
        defer { lock.unlock() }
        return cache.count
    }

    /// Runs one pass (0 forward, 1 backward-data, 2 backward-weights) with a workspace from the
    /// buffer pool; a failure names the pass and the shapes.
    private static func run(_ p: ConvPrimitives, _ pass: Int32, _ g: ConvGeometry,
                            _ call: (UnsafeMutablePointer<Float>) -> Int32) throws {
        let ws = Scratch((tb_dnnl_conv_workspace(p.handle, pass) + 3) / 4)
        let status = withExtendedLifetime((p, ws)) { call(ws.pointer) }
        guard status == 0 else {
            let name = ["forward", "backward-data", "backward-weights"][Int(pass)]
            throw TensorError("conv2d", "oneDNN's \(name) failed (status \(status)) on input [\(g.n), \(g.c), \(g.h), \(g.w)] with weight [\(g.o), \(g.cg), \(g.kh), \(g.kw)]")
        }
    }

    /// Which arguments are held blocked (bit `slot` of `held`), and of those which in BF16 (`bf16`);
    /// the buffers whose pointers were taken, kept alive through the call (a later `.storage` of the
    /// same tensor, as when it is both input and weight, replaces its buffer with a plain one).
    private struct Held {
        var held: UInt32 = 0, bf16: UInt32 = 0
        var buffers: [Storage] = []
        mutating func mark(_ slot: Int32, bf16 isBF16: Bool) {
            held |= 1 << UInt32(slot)
            if isBF16 { bf16 |= 1 << UInt32(slot) }
        }
    }

    /// What argument `slot` of `pass` takes besides plain FP32 (TB_DNNL_* bits).
    private static func takes(_ c: OpaquePointer, _ pass: Int32, _ slot: Int32) -> Int32 {
        tb_dnnl_conv_blocked16(c, pass, slot)
    }

    /// Argument `slot` of `pass` as the primitive takes it: a blocked tensor as it is held when the
    /// primitive takes that layout and type, else the plain FP32 elements.
    private static func input(_ c: OpaquePointer, _ pass: Int32, _ slot: Int32, _ t: Tensor,
                              _ held: inout Held) -> UnsafePointer<Float> {
        let can = takes(c, pass, slot)
        if (t.layout == .blocked16 && can & Int32(TB_DNNL_F32) != 0)
            || (t.layout == .blocked16BF16 && can & Int32(TB_DNNL_BF16_AS_IS) != 0) {
            held.mark(slot, bf16: t.layout == .blocked16BF16)
            held.buffers.append(t.heldStorage)
            return UnsafePointer(t.heldStorage.pointer)
        }
        held.buffers.append(t.storage)
        return UnsafePointer(t.storage.pointer)
    }

    /// A new tensor for output `slot` of `pass`, in the primitive's layout and type when a tensor
    /// can hold it (BF16 blocks from a low-precision primitive), else plain FP32.
    private static func output(_ c: OpaquePointer, _ pass: Int32, _ slot: Int32, _ shape: [Int],
                               _ held: inout Held) throws -> Tensor {
        let n = try Memory.elementCount(shape, op: "conv2d"), can = takes(c, pass, slot)
        if Layout.blocked16.suits(shape), can & Int32(TB_DNNL_BF16_AS_IS) != 0 {
            held.mark(slot, bf16: true)
            return Tensor(uninitialized: shape, count: n, layout: .blocked16BF16)
        }
        if Layout.blocked16.suits(shape), can & Int32(TB_DNNL_F32) != 0 {
            held.mark(slot, bf16: false)
            return Tensor(uninitialized: shape, count: n, layout: .blocked16)
        }
        return Tensor(uninitialized: shape, count: n, layout: .plain)
    }

    /// y = conv(x, w) + b, left in oneDNN's layout when it has one.
    static func forward(_ p: ConvPrimitives, _ g: ConvGeometry, x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        var held = Held()
        let px = input(p.handle, 0, 0, x, &held)
        let y = try output(p.handle, 0, 3, [g.n, g.o, g.oh, g.ow], &held)
        try withExtendedLifetime(held.buffers) {
            try run(p, 0, g) {
                tb_dnnl_conv_forward(p.handle, px, weight.storage.pointer, bias?.storage.pointer, y.heldStorage.pointer,
                                     held.held, held.bf16, $0)
            }
        }
        return y
    }

    /// The forward on raw plain buffers (a slice of a large batch).
    static func forward(_ p: ConvPrimitives, _ g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) throws {
        try run(p, 0, g) { tb_dnnl_conv_forward(p.handle, x, weight, bias, out, 0, 0, $0) }
    }

    static func backwardData(_ p: ConvPrimitives, _ g: ConvGeometry, gradOut: Tensor, weight: Tensor) throws -> Tensor {
        var held = Held()
        let pg = input(p.handle, 1, 0, gradOut, &held)
        let dx = try output(p.handle, 1, 2, [g.n, g.c, g.h, g.w], &held)
        try withExtendedLifetime(held.buffers) {
            try run(p, 1, g) {
                tb_dnnl_conv_backward_data(p.handle, pg, weight.storage.pointer, dx.heldStorage.pointer, held.held, held.bf16, $0)
            }
        }
        return dx
    }

    static func backwardWeights(_ p: ConvPrimitives, _ g: ConvGeometry, x: Tensor, gradOut: Tensor,
                                dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?) throws {
        var held = Held()
        let px = input(p.handle, 2, 0, x, &held), pg = input(p.handle, 2, 1, gradOut, &held)
        try withExtendedLifetime(held.buffers) {
            try run(p, 2, g) { tb_dnnl_conv_backward_weights(p.handle, px, pg, dw, db, held.held, held.bf16, $0) }
        }
    }
}

/// One convolution shape's primitives, destroyed when the cache and every call have let go.
final class ConvPrimitives {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { tb_dnnl_conv_destroy(handle) }
}
