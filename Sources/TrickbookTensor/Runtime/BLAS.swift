import CShims
import Foundation

/// OpenBLAS, loaded on first use with the fastest kernels this CPU can run.
///
/// Debian's OpenBLAS 0.3.21 does not recognise recent CPUs and falls back to its slow "Prescott"
/// kernels. OpenBLAS reads `OPENBLAS_CORETYPE` only when it loads, so we choose the core before
/// opening it: AVX-512 → SkylakeX, AVX2 + FMA → Haswell. A value the user set is kept. The chosen
/// kernels must agree with a plain loop on one small product; if they do not, we reload with
/// OpenBLAS's own choice, and failing that compute with the plain loop.
public enum BLAS {
    public struct Status: Sendable {
        /// The library file opened, or nil when none could be (the plain loop is used).
        public let library: String?
        /// OpenBLAS's name for the kernels in use.
        public let core: String
        /// How the core was chosen, for `trickbook doctor` and benchmark headers.
        public let how: String
        public let threads: Int
        /// Whether products go through the plain reference loop.
        public let usesReference: Bool
    }

    public static let status: Status = load()

    private static func load() -> Status {
        let threads = Threads.count
        var err = [CChar](repeating: 0, count: 512)
        let preset = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        var chosen: String?
        if preset == nil {
            if tb_cpu_has_avx512() != 0 { chosen = "SkylakeX" } else if tb_cpu_has_avx2_fma() != 0 { chosen = "Haswell" }
            if let c = chosen { setenv("OPENBLAS_CORETYPE", c, 1) }
        }
        guard tb_blas_open(&err, err.count) == 0 else {
            if chosen != nil { unsetenv("OPENBLAS_CORETYPE") }
            return Status(library: nil, core: "reference loop", how: "OpenBLAS could not be opened (\(String(cString: err))); install libopenblas0", threads: 1, usesReference: true)
        }
        tb_blas_set_threads(Int32(threads))
        let library = String(cString: tb_blas_path())
        if let preset {
            let ok = agreesWithReference()
            return Status(library: library, core: String(cString: tb_blas_corename()),
                          how: "OPENBLAS_CORETYPE=\(preset) was set" + (ok ? "" : " (WARNING: its results disagree with a plain loop)"),
                          threads: threads, usesReference: false)
        }
        guard let chosen else {
            return Status(library: library, core: String(cString: tb_blas_corename()), how: "OpenBLAS's own detection (no AVX2 or AVX-512)", threads: threads, usesReference: false)
        }
        if agreesWithReference() {
            return Status(library: library, core: String(cString: tb_blas_corename()), how: "chosen from CPU features (\(chosen)), checked against a plain loop", threads: threads, usesReference: false)
        }
        // The forced kernels are wrong on this CPU: reload with OpenBLAS's own choice.
        tb_blas_close()
        unsetenv("OPENBLAS_CORETYPE")
        guard tb_blas_open(&err, err.count) == 0 else {
            return Status(library: nil, core: "reference loop", how: "\(chosen) kernels disagreed with a plain loop and OpenBLAS could not be reopened", threads: 1, usesReference: true)
        }
        tb_blas_set_threads(Int32(threads))
        let core = String(cString: tb_blas_corename())
        if core != chosen && agreesWithReference() {
            return Status(library: library, core: core, how: "\(chosen) kernels disagreed with a plain loop; using OpenBLAS's own detection", threads: threads, usesReference: false)
        }
        return Status(library: library, core: "reference loop", how: "\(chosen) kernels disagreed with a plain loop and the library could not be reloaded", threads: 1, usesReference: true)
    }

    /// One product with transposes, alpha and beta, against the plain loop.
    private static func agreesWithReference() -> Bool {
        let m = 37, n = 29, k = 53
        var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: n * k)
        var c1 = [Float](repeating: 0, count: m * n)
        for i in a.indices { a[i] = Float((i * 7919) % 97) / 97 - 0.5 }
        for i in b.indices { b[i] = Float((i * 104729) % 89) / 89 - 0.5 }
        for i in c1.indices { c1[i] = Float(i % 13) / 13 }
        var c2 = c1
        tb_sgemm(0, 1, Int32(m), Int32(n), Int32(k), 0.75, a, Int32(k), b, Int32(k), 0.5, &c1, Int32(n))
        tb_sgemm_reference(0, 1, Int32(m), Int32(n), Int32(k), 0.75, a, Int32(k), b, Int32(k), 0.5, &c2, Int32(n))
        for i in c1.indices where !(abs(c1[i] - c2[i]) <= 1e-4 * (1 + abs(c2[i]))) { return false }
        return true
    }
}

extension BLAS {
    /// OpenBLAS's thread count is one setting for the whole process, and its threaded kernels must
    /// not run from two threads at once: a product outside our parallel loops, and each of our
    /// parallel regions, hold this lock (several sessions in one process, as the tests run them,
    /// would otherwise race and change the results).
    static let lock = NSRecursiveLock()

    /// Runs `body` with OpenBLAS on one thread, for code that calls sgemm from our own parallel
    /// loops: each of our threads then runs its products itself and the two pools never compete.
    static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        let s = status
        guard !s.usesReference, s.threads > 1 else { return try body() }
        lock.lock()
        defer { lock.unlock() }
        tb_blas_set_threads(1)
        defer { tb_blas_set_threads(Int32(s.threads)) }
        return try body()
    }

    /// Marks the calling thread as a worker of a parallel region (its products run single-threaded
    /// under the region's lock) while `body` runs.
    static func asWorker(_ body: () -> Void) {
        let d = Thread.current.threadDictionary
        let was = d[workerKey] != nil
        d[workerKey] = true
        defer { if !was { d.removeObject(forKey: workerKey) } }
        body()
    }

    static let workerKey = "trickbook.blas.worker"

    /// Whether this thread is a worker of a parallel region.
    static var isWorker: Bool { Thread.current.threadDictionary[workerKey] != nil }
}

/// Checks that sizes fit the 32-bit integers BLAS and the C kernels take.
func checkBLASSizes(_ sizes: [Int], op: String, shapes: String) throws {
    guard sizes.allSatisfy({ $0 < Int(Int32.max) }) else {
        throw TensorError(op, "\(shapes) has a dimension or product of 2^31 or more, beyond what BLAS indexes")
    }
}

/// Row-major C[M,N] = alpha · op(A) · op(B) + beta · C. Inside `parallelFor`, only within
/// `BLAS.singleThreaded`.
@inline(__always)
func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
           a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0 && n > 0 else { return }
    if k == 0 {  // BLAS leaves C untouched when K = 0 only if beta = 1; make it explicit
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    let threaded = !BLAS.status.usesReference && BLAS.status.threads > 1 && !BLAS.isWorker
    if threaded { BLAS.lock.lock() }
    defer { if threaded { BLAS.lock.unlock() } }
    if BLAS.status.usesReference {
        tb_sgemm_reference(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    } else {
        tb_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
