import CShims
import Dispatch
import Foundation

/// How many threads trickbook computes with: the cores available to the process, or
/// `TRICKBOOK_THREADS`. Our parallel loops and OpenBLAS share this budget and never nest: a
/// `parallelFor` body calls BLAS only inside `BLAS.singleThreaded`, which turns OpenBLAS's own
/// pool off for that time.
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

/// How many parts a reduction over a batch splits into, whatever the number of threads: each part
/// sums its own items in order and the parts are added in order, so the result is bitwise the
/// same on one thread or many (one seed fixes a run on any machine).
let reductionParts = 8

/// `body(part, range)` for each of min(n, reductionParts) fixed parts of 0..<n: on our threads
/// (with single-threaded BLAS) when there are several, else on this thread.
func forEachPart(_ n: Int, _ body: (Int, Range<Int>) -> Void) {
    let parts = partCount(n)
    let range = { (p: Int) in (n * p / parts)..<(n * (p + 1) / parts) }
    if parts <= 1 || Threads.count <= 1 {
        for p in 0..<parts { body(p, range(p)) }
        return
    }
    BLAS.singleThreaded { perform(parts) { p in BLAS.asWorker { body(p, range(p)) } } }
}

/// The number of parts `forEachPart` uses for n items.
func partCount(_ n: Int) -> Int { Swift.max(0, Swift.min(n, reductionParts)) }

/// Calls `body` on disjoint ranges covering 0..<n, on up to `Threads.count` threads. Ranges are at
/// least `grain` long, so small loops stay on the calling thread. The body must not call BLAS.
@inline(__always)
func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    parallelChunks(n, grain: grain) { _, r in body(r) }
}

/// The number of chunks `parallelChunks` will use for n items.
@inline(__always)
func chunkCount(_ n: Int, grain: Int = 1) -> Int { Swift.max(1, Swift.min(Threads.count, n / Swift.max(grain, 1))) }

/// `parallelFor` that also passes the chunk's number (0 ..< chunkCount(n, grain)), so that each
/// chunk can use its own scratch buffers.
@inline(__always)
func parallelChunks(_ n: Int, grain: Int = 1, _ body: (Int, Range<Int>) -> Void) {
    let chunks = chunkCount(n, grain: grain)
    if chunks <= 1 {
        if n > 0 { body(0, 0..<n) }
        return
    }
    perform(chunks) { c in body(c, (n * c / chunks)..<(n * (c + 1) / chunks)) }
}

/// `body(i)` for i in 0..<n at once on our threads: OpenMP's, which oneDNN's convolutions use, once
/// oneDNN is loaded, so that one pool of threads does all the work and stays awake from one op to
/// the next; else libdispatch's.
func perform(_ n: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { f in
        var call = f
        let done = withUnsafeMutablePointer(to: &call) { p in
            tb_omp_perform(n, Int32(clamping: Threads.count), p) { ctx, i in
                ctx?.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
            }
        }
        if done == 0 { DispatchQueue.concurrentPerform(iterations: n, execute: f) }
    }
}
