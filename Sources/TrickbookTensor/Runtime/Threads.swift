import Dispatch
import Foundation

/// How many threads trickbook computes with: the cores available to the process, or
/// `TRICKBOOK_THREADS`. Our parallel loops and OpenBLAS share this budget and never nest: a
/// `parallelFor` body never calls BLAS, so the two pools are never busy at the same time.
public enum Threads {
    public static let count: Int = {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        guard let raw = ProcessInfo.processInfo.environment["TRICKBOOK_THREADS"] else { return Swift.max(cores, 1) }
        guard let n = Int(raw.trimmingCharacters(in: .whitespaces)), n >= 1 else {
            FileHandle.standardError.write("trickbook: TRICKBOOK_THREADS=\(raw) is not a positive integer; using \(cores)\n".data(using: .utf8)!)
            return Swift.max(cores, 1)
        }
        return n
    }()
}

/// Calls `body` on disjoint ranges covering 0..<n, on up to `Threads.count` threads. Ranges are at
/// least `grain` long, so small loops stay on the calling thread. The body must not call BLAS.
@inline(__always)
func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    let chunks = Swift.min(Threads.count, n / Swift.max(grain, 1))
    if chunks <= 1 {
        if n > 0 { body(0..<n) }
        return
    }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        body((n * c / chunks)..<(n * (c + 1) / chunks))
    }
}
