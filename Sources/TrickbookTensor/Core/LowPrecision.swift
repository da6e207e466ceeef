// Float16 and BFloat16, both rounded to nearest with ties to even, for low-precision training.

public enum LowPrecisionFormat: String, Sendable, CaseIterable {
    case float16, bfloat16
}

/// The precision a model trains or evaluates in: FP32, or FP16 / BF16 (weights, activations and
/// gradients rounded to that format, the optimizer keeping FP32 masters).
public enum Precision: String, Sendable, CaseIterable {
    case fp32, fp16, bf16

    /// The 16-bit format, or nil for FP32.
    public var format: LowPrecisionFormat? {
        switch self {
        case .fp32: return nil
        case .fp16: return .float16
        case .bf16: return .bfloat16
        }
    }
}

/// IEEE binary16 bits of `f`: overflow becomes ±inf, tiny values become subnormals or ±0, NaN stays NaN.
public func float16Bits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    let sign = UInt16((x >> 16) & 0x8000)
    let exponent = Int((x >> 23) & 0xFF)
    var mantissa = x & 0x7F_FFFF
    if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x200 | UInt16(mantissa >> 13) : 0) }
    let e = exponent - 127 + 15
    if e >= 31 { return sign | 0x7C00 }
    if e <= 0 {
        if e < -10 { return sign }  // below half the smallest subnormal: rounds to zero
        mantissa |= 0x80_0000
        let shift = UInt32(14 - e)
        var half = mantissa >> shift
        let rest = mantissa & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
        if rest > halfway || (rest == halfway && half & 1 == 1) { half += 1 }
        return sign | UInt16(half)
    }
    var half = UInt32(e) << 10 | mantissa >> 13
    let rest = mantissa & 0x1FFF
    if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) { half += 1 }  // a carry rounds up the exponent, to inf at most
    return sign | UInt16(half)
}

public func floatFromFloat16Bits(_ h: UInt16) -> Float {
    let sign: Float = h & 0x8000 != 0 ? -1 : 1
    let exponent = Int((h >> 10) & 0x1F), mantissa = UInt32(h & 0x3FF)
    if exponent == 0 { return sign * Float(mantissa) * 0x1p-24 }
    if exponent == 31 { return Float(bitPattern: UInt32(h & 0x8000) << 16 | 0x7F80_0000 | mantissa << 13) }
    return Float(bitPattern: UInt32(h & 0x8000) << 16 | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
}

/// The top 16 bits of `f`, rounded to nearest even; NaN stays a (quiet) NaN.
public func bfloat16Bits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    if f.isNaN { return UInt16(x >> 16) | 0x40 }
    return UInt16((x &+ 0x7FFF &+ ((x >> 16) & 1)) >> 16)
}

public func floatFromBFloat16Bits(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

extension Tensor {
    /// The elements encoded in a 16-bit format.
    public func bits(_ format: LowPrecisionFormat) -> [UInt16] {
        withUnsafeBufferPointer { b in format == .float16 ? b.map(float16Bits) : b.map(bfloat16Bits) }
    }

    /// A tensor decoded from 16-bit values.
    public convenience init(bits: [UInt16], format: LowPrecisionFormat, shape: [Int]) throws {
        try self.init(format == .float16 ? bits.map(floatFromFloat16Bits) : bits.map(floatFromBFloat16Bits), shape: shape)
    }

    /// Each element rounded to the nearest value of `format` (kept in Float32). The gradient is
    /// rounded the same way on its way back, as it would be if it were stored in that format.
    public func rounded(to format: LowPrecisionFormat) -> Tensor {
        let r: (Float) -> Float = format == .float16 ? { floatFromFloat16Bits(float16Bits($0)) } : { floatFromBFloat16Bits(bfloat16Bits($0)) }
        return unaryKernel(self, r).recorded("round_\(format.rawValue)", [self]) { g, _ in [unaryKernel(g, r)] }
    }
}
