/// A seeded pseudo-random generator: xoshiro256** seeded through splitmix64.
///
/// One global generator (`Random.global`, reseeded by `Random.seed`) serves ops that are not given
/// one; data order, augmentation and initialisation each take an explicit generator so that one
/// seed fixes a whole run whatever else draws numbers.
public final class Generator {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    private var spareNormal: Float?

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
    }

    /// The full state, for checkpoints; `restore` puts it back.
    public var state: [UInt64] { [s0, s1, s2, s3, spareNormal.map { UInt64($0.bitPattern) | (1 << 32) } ?? 0] }

    public func restore(_ state: [UInt64]) throws {
        guard state.count == 5 else { throw TensorError("generator", "a generator state has 5 words, got \(state.count)") }
        s0 = state[0]; s1 = state[1]; s2 = state[2]; s3 = state[3]
        spareNormal = state[4] >> 32 == 1 ? Float(bitPattern: UInt32(truncatingIfNeeded: state[4])) : nil
    }

    @inline(__always)
    public func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in [0, 1), 24 random bits.
    @inline(__always)
    public func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [0, 1), 53 random bits.
    public func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform integer in 0..<n (n > 0), without modulo bias (Lemire's method).
    public func int(below n: Int) -> Int {
        guard n > 1 else { return 0 }  // callers check the bound; 0..<1 and empty ranges give 0
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Standard normal (Box–Muller; the second value of each pair is kept for the next call).
    public func normal() -> Float {
        if let z = spareNormal { spareNormal = nil; return z }
        var u1 = nextDouble()
        while u1 <= 0 { u1 = nextDouble() }
        let u2 = nextDouble()
        let r = (-2 * _log(u1)).squareRoot()
        spareNormal = Float(r * _sin(2 * .pi * u2))
        return Float(r * _cos(2 * .pi * u2))
    }

    /// A new generator seeded from this one: for a worker, a layer, an epoch.
    public func split() -> Generator { Generator(seed: next()) }
}

import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Foundation.sin(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }

/// The global generator, reseeded by `Random.seed(_:)`.
public enum Random {
    public private(set) static var global = Generator(seed: 0)
    public static func seed(_ seed: UInt64) { global = Generator(seed: seed) }
}
