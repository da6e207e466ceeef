import Foundation
import TrickbookTensor

/// The machine's arithmetic peak, worked out from what it says of itself: threads × clock × vector
/// lanes × 2 (a fused multiply-add is two operations) × FMA units per core. The number of FMA units
/// is not something a CPU reports: two is assumed (every AVX-512 core since Skylake-SP and Zen 4,
/// which issues two 256-bit halves). BF16 doubles the lanes (VDPBF16PS multiplies pairs).
struct Peak {
    let threads: Int
    let gigahertz: Double
    let lanes: Int
    let bf16: Bool

    static var here: Peak {
        let flags = cpuField("flags") ?? ""
        let avx512 = flags.split(separator: " ").contains("avx512f")
        return Peak(threads: Threads.count, gigahertz: maxGigahertz(), lanes: avx512 ? 16 : 8,
                    bf16: flags.split(separator: " ").contains("avx512_bf16"))
    }

    var fp32: Double { Double(threads) * gigahertz * Double(lanes) * 2 * 2 }
    var bfloat16: Double? { bf16 ? 2 * fp32 : nil }

    var description: String {
        let f = String(format: "%.1f GHz", gigahertz)
        let b = bfloat16.map { String(format: ", BF16 %.0f GFLOP/s", $0) } ?? ", no BF16 instructions"
        return String(format: "machine peak: FP32 %.0f GFLOP/s", fp32) + b
            + " (\(threads) threads × \(f) × \(lanes) lanes × 2 FMA units × 2; the units assumed, the clock the highest reported)"
    }

    /// The highest clock the kernel reports (cpufreq's maximum, else /proc/cpuinfo's current).
    private static func maxGigahertz() -> Double {
        if let text = try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding: .utf8),
           let khz = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)), khz > 0 {
            return khz / 1e6
        }
        return (cpuField("cpu MHz").flatMap(Double.init) ?? 1000) / 1000
    }

    private static func cpuField(_ name: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return nil
    }
}
