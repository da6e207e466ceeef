// The processes of a data-parallel run, through MPI (CMPI opens the library at run time).
// Without an MPI launcher this is a world of one: rank 0 of 1, and every collective returns
// its input.

import CMPI
import Foundation

public struct MPIError: Error, CustomStringConvertible {
    public let description: String
    init(_ what: String) { description = what }
}

public enum MPI {
    /// Whether MPI runs: this process was started by a launcher and `start()` succeeded.
    public private(set) static var running = false
    /// This process's rank (0 without MPI) and the number of processes (1 without MPI).
    public private(set) static var rank = 0
    public private(set) static var size = 1

    /// Whether a launcher (mpirun, mpiexec, srun) started this process.
    public static var launched: Bool { tb_mpi_launched() != 0 }

    /// Starts MPI when a launcher started this process (and only once); a world of one otherwise.
    public static func start() throws {
        guard !running, launched else { return }
        guard tb_mpi_init() == 0 else { throw MPIError("MPI could not start: \(String(cString: tb_mpi_error()))") }
        running = true
        rank = Int(tb_mpi_rank())
        size = Int(tb_mpi_size())
    }

    /// Ends MPI (every rank waits for the others here).
    public static func finish() {
        guard running else { return }
        _ = tb_mpi_finalize()
        running = false
    }

    /// Stops every rank: the launcher ends the job (after an error on one rank, the others would
    /// otherwise wait for it in their next collective).
    public static func abort(_ code: Int32) -> Never {
        tb_mpi_abort(code)
        exit(code)
    }

    /// What `doctor` says: the library, and whether it opens.
    public static var status: String {
        guard tb_mpi_built_with_headers() != 0 else { return "none (built without MPI's header: apt install libopenmpi-dev openmpi-bin, then rebuild)" }
        let library = String(cString: tb_mpi_library()), family = String(cString: tb_mpi_family())
        guard tb_mpi_probe() != 0 else { return "none (\(String(cString: tb_mpi_error())))" }
        let world = running ? ", rank \(rank) of \(size)" : ", not started by a launcher: run under mpirun -np N"
        let version = running ? String(cString: tb_mpi_version()) : ""
        return "\(family) (\(library))\(version.isEmpty ? "" : ": " + version)\(world)"
    }

    private static func check(_ code: Int32, _ what: String) throws {
        guard code == 0 else { throw MPIError("\(what) across \(size) processes failed: \(String(cString: tb_mpi_error()))") }
    }

    /// Sums `values` across ranks, in place.
    public static func sum(_ values: UnsafeMutableBufferPointer<Float>) throws {
        guard running, size > 1, let p = values.baseAddress else { return }
        try check(tb_mpi_allreduce_f32(p, Int64(values.count)), "a sum")
    }

    public static func sum(_ values: UnsafeMutableBufferPointer<Double>) throws {
        guard running, size > 1, let p = values.baseAddress else { return }
        try check(tb_mpi_allreduce_f64(p, Int64(values.count)), "a sum")
    }

    public static func sum(_ values: inout [Double]) throws {
        try values.withUnsafeMutableBufferPointer { try sum($0) }
    }

    /// Rank `root`'s bytes to every rank, in place.
    public static func broadcast(_ bytes: UnsafeMutableRawBufferPointer, from root: Int = 0) throws {
        guard running, size > 1, let p = bytes.baseAddress else { return }
        try check(tb_mpi_bcast(p, Int64(bytes.count), Int32(root)), "a broadcast")
    }

    /// Every rank's words, rank by rank (one list of `words.count` per rank).
    public static func gather(_ words: [UInt64]) throws -> [[UInt64]] {
        guard running, size > 1 else { return [words] }
        let n = words.count
        var all = [UInt64](repeating: 0, count: n * size)
        try words.withUnsafeBufferPointer { mine in
            try all.withUnsafeMutableBufferPointer { out in
                try check(tb_mpi_allgather_u64(mine.baseAddress, Int64(n), out.baseAddress), "a gather")
            }
        }
        return (0..<size).map { Array(all[($0 * n)..<(($0 + 1) * n)]) }
    }

    public static func barrier() throws {
        guard running, size > 1 else { return }
        try check(tb_mpi_barrier(), "a barrier")
    }

    /// A sum across ranks, in place, started now: wait on its request before reading `values`,
    /// which must stay where they are until then.
    public static func startSum(_ values: UnsafeMutableBufferPointer<Float>) throws -> Request {
        guard running, size > 1, let p = values.baseAddress else { return Request(id: -1) }
        let id = tb_mpi_iallreduce_f32(p, Int64(values.count))
        guard id >= 0 else { throw MPIError("a sum across \(size) processes could not start: \(String(cString: tb_mpi_error()))") }
        return Request(id: id)
    }

    /// A started sum.
    public struct Request {
        let id: Int64
        public func wait() throws {
            guard id >= 0 else { return }
            try MPI.check(tb_mpi_wait(id), "a sum")
        }
    }

    /// Lets the started sums move on (MPI moves them only inside its calls).
    public static func progress() {
        guard running, size > 1 else { return }
        _ = tb_mpi_progress()
    }
}
