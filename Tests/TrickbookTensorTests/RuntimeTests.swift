import Foundation
import Testing
@testable import TrickbookTensor

@Suite struct RandomTests {
    @Test func sameSeedSameNumbers() throws {
        for make in [{ (g: Generator) in try Tensor.randn([100], generator: g) },
                     { (g: Generator) in try Tensor.uniform([100], low: -2, high: 3, generator: g) },
                     { (g: Generator) in try Tensor.bernoulli([100], p: 0.3, generator: g) },
                     { (g: Generator) in try Tensor.randint(-5, 5, shape: [100], generator: g) },
                     { (g: Generator) in try Tensor.permutation(100, generator: g) }] {
            #expect(try make(Generator(seed: 42)).scalars == make(Generator(seed: 42)).scalars)
            #expect(try make(Generator(seed: 42)).scalars != make(Generator(seed: 43)).scalars)
        }
    }

    @Test func generatorStateRoundTrips() throws {
        let g = Generator(seed: 7)
        _ = g.normal()  // leaves a spare normal in the state
        let saved = g.state
        let a = (0..<5).map { _ in g.normal() }
        let h = Generator(seed: 0)
        try h.restore(saved)
        #expect((0..<5).map { _ in h.normal() } == a)
    }

    @Test func distributionsHaveTheirMoments() throws {
        let g = Generator(seed: 3)
        let n = try Tensor.normal([20000], mean: 2, std: 3, generator: g)
        #expect(abs(try n.mean().item - 2) < 0.1)
        #expect(abs(try n.variance().item.squareRoot() - 3) < 0.1)
        let u = try Tensor.uniform([20000], low: -1, high: 1, generator: g).scalars
        #expect(u.allSatisfy { $0 >= -1 && $0 < 1 })
        let r = try Tensor.randint(0, 3, shape: [3000], generator: g).scalars
        #expect(Set(r) == [0, 1, 2])
        #expect(try Tensor.permutation(50, generator: g).scalars.sorted() == (0..<50).map(Float.init))
    }
}

@Suite struct LowPrecisionTests {
    static let half: [(Float, UInt16)] = [
        (1, 0x3C00), (-2, 0xC000), (65504, 0x7BFF), (65519.99, 0x7BFF), (65520, 0x7C00),
        (0x1p-24, 0x0001), (0x1p-25, 0x0000), (0x1.8p-25, 0x0001), (0x1p-14, 0x0400),
        (1 + 0x1p-11, 0x3C00),        // a tie rounds to the even mantissa (down)
        (1 + 3 * 0x1p-11, 0x3C02),    // a tie rounds to the even mantissa (up)
        (Float.infinity, 0x7C00), (0.1, 0x2E66),
    ]
    static let brain: [(Float, UInt16)] = [
        (1, 0x3F80), (1 + 0x1p-8, 0x3F80), (1 + 3 * 0x1p-8, 0x3F82), (-0.1, 0xBDCD), (3.4e38, 0x7F80),
    ]

    @Test(arguments: half)
    func float16RoundsToNearestEven(value: Float, bits: UInt16) {
        #expect(float16Bits(value) == bits, "\(value)")
    }

    @Test(arguments: brain)
    func bfloat16RoundsToNearestEven(value: Float, bits: UInt16) {
        #expect(bfloat16Bits(value) == bits, "\(value)")
    }

    @Test func roundTripsAndNaN() throws {
        for h in stride(from: 0, to: 0x7C00, by: 7) {  // every 7th finite half decodes and re-encodes exactly
            #expect(float16Bits(floatFromFloat16Bits(UInt16(h))) == UInt16(h))
        }
        #expect(floatFromFloat16Bits(float16Bits(.nan)).isNaN)
        #expect(floatFromBFloat16Bits(bfloat16Bits(.nan)).isNaN)
        let t = try Tensor([0.1, 1000.7, -3], shape: [3])
        let back = try Tensor(bits: t.bits(.bfloat16), format: .bfloat16, shape: [3])
        #expect(back.scalars == t.rounded(to: .bfloat16).scalars)
        #expect(t.rounded(to: .float16).scalars == [floatFromFloat16Bits(0x2E66), 1000.5, -3])
    }

    /// The loss scaler's pass counts what the rounding functions above round to zero, at the
    /// boundaries and over every exponent, scales every value, and notices an inf or a NaN
    /// anywhere in a tensor large enough to be split among threads.
    @Test func unscaleCountsWhatRoundsToZero() throws {
        let edges: [Float] = [0, -0.0, 0x1p-25, -0x1p-25, Float(0x1p-25).nextUp, 0x1p-24, Float(bitPattern: 0x8000),
                              Float(bitPattern: 0x8001), Float(bitPattern: 0x7FFF), 1, -3]
        let g = Generator(seed: 5)
        let spread: [Float] = (0..<200_000).map { _ in  // magnitudes from 2^-140 to 2^10, both signs
            let sign: Float = g.nextFloat() < 0.5 ? -1 : 1, exponent = g.int(below: 150) - 140
            return sign * Float(sign: .plus, exponent: exponent, significand: 1 + g.nextFloat())
        }
        for fp16 in [true, false] {
            for values in [edges, spread] {
                let t = try Tensor(values, shape: [values.count])
                let (finite, zeros) = t.unscale(by: 0.25, fp16: fp16)
                let rounded: (Float) -> Float = fp16 ? { floatFromFloat16Bits(float16Bits($0)) } : { floatFromBFloat16Bits(bfloat16Bits($0)) }
                let expected = values.filter { $0 != 0 && rounded($0) == 0 }.count
                #expect(finite && zeros == expected, "fp16 \(fp16): \(zeros) counted, \(expected) expected")
                #expect(t.scalars == values.map { $0 * 0.25 })
            }
            for bad in [Float.infinity, -.infinity, .nan] {
                var values = [Float](repeating: 1, count: 300_000)
                values[299_999] = bad
                #expect(!(try Tensor(values, shape: [values.count]).unscale(by: 1, fp16: fp16).finite), "\(bad) missed")
            }
        }
    }
}

@Suite struct ThreadTests {
    /// Once oneDNN is loaded our loops run on its OpenMP threads: every index once, on several
    /// threads when there are several.
    @Test func loopsOnOpenMPCoverEveryIndexOnce() throws {
        _ = OneDNN.available
        let n = 10_007
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: n)
        let lock = NSLock()
        nonisolated(unsafe) var threads = Set<UInt64>()
        perform(n) { i in
            counts[i] += 1
            if i % 97 == 0 { lock.withLock { _ = threads.insert(UInt64(pthread_self())) } }
        }
        #expect((0..<n).allSatisfy { counts[$0] == 1 })
        if Threads.count > 1, OneDNN.available { #expect(threads.count > 1) }
        parallelFor(n, grain: 1) { r in for i in r { counts[i] += 1 } }
        #expect((0..<n).allSatisfy { counts[$0] == 2 })
    }
}

@Suite struct BLASTests {
    @Test func loadedKernelsAgreeWithPlainLoops() throws {
        let status = BLAS.status
        #expect(status.threads >= 1)
        let a = try random([70, 90], seed: 1), b = try random([90, 50], seed: 2)
        let c = try a.matmul(b)
        var ref = [Float](repeating: 0, count: 70 * 50)
        let sa = a.scalars, sb = b.scalars
        for i in 0..<70 { for k in 0..<90 { for j in 0..<50 { ref[i * 50 + j] += sa[i * 90 + k] * sb[k * 50 + j] } } }
        expectClose(c.scalars, ref, atol: 1e-4, "sgemm via \(status.core)")
    }
}

@Suite struct MemoryLimitTests {
    /// A process in a nested cgroup is held to the tightest limit on the way up to the root.
    @Test func nestedCgroupLimitsApply() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tb-cgroup-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func write(_ dir: String, _ files: [String: String]) throws {
            try FileManager.default.createDirectory(atPath: root + dir, withIntermediateDirectories: true)
            for (name, text) in files { try text.write(toFile: root + dir + "/" + name, atomically: true, encoding: .utf8) }
        }
        try write("", ["memory.max": "max\n", "memory.current": "5000\n"])
        try write("/a", ["memory.max": "500\n", "memory.current": "450\n"])
        try write("/a/b", ["memory.max": "1000\n", "memory.current": "100\n"])
        try write("/memory/x", ["memory.limit_in_bytes": "2000\n", "memory.usage_in_bytes": "1900\n"])
        #expect(Memory.cgroupHeadroom(membership: "0::/a/b\n", root: root) == 50)
        #expect(Memory.cgroupHeadroom(membership: "0::/a/b/\n", root: root) == 50)
        #expect(Memory.cgroupHeadroom(membership: "4:memory:/x\n0::/\n", root: root) == 100)
        #expect(Memory.cgroupHeadroom(membership: "4:cpu,memory:/x/gone\n", root: root) == 100)
        #expect(Memory.cgroupHeadroom(membership: "0::/\n", root: root) == nil)
        #expect(Memory.cgroupHeadroom(membership: "", root: root) == nil)
    }
}
