import Foundation
import TrickbookModels
import TrickbookTensor

/// The built executable run under Open MPI's mpirun, as a user runs a data-parallel notebook.
enum MPIRun {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = root.appendingPathComponent(".build/debug/trickbook").path
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("scripts").path
    static let mpirun = "/usr/bin/mpirun"

    /// Whether mpirun is here and trickbook can open MPI (`doctor` says why not).
    static let available: Bool = {
        guard FileManager.default.isExecutableFile(atPath: mpirun) else { return false }
        return (try? run(["doctor"], mpi: nil, in: NSTemporaryDirectory()).out.contains("MPI            Open MPI")) ?? false
    }()

    struct Result {
        let status: Int32
        let out: String
        let err: String
        let seconds: Double
    }

    /// What every mpirun here needs: root allowed (CI runs as root), one thread per rank, no
    /// binding (the ranks share two cores with the test), and shared memory without the
    /// cross-process copy containers forbid.
    static var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        env["TRICKBOOK_THREADS"] = "1"
        return env
    }

    /// A fresh directory for one test's files.
    static func directory() throws -> String {
        let d = NSTemporaryDirectory() + "trickbook-mpi-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Runs `trickbook args` on `mpi` ranks (nil: without mpirun) in `dir`; stopped after
    /// `timeout` seconds (a hang is a failure, not a stuck test). `launcher` goes before the
    /// binary (mpirun's own options, or an MPMD line).
    static func run(_ args: [String], mpi ranks: Int?, in dir: String, launcher: [String] = [], timeout: Double = 600,
                    wrap: [String] = [], environment: [String: String] = MPIRun.environment, started: ((Process) -> Void)? = nil) throws -> Result {
        let p = Process()
        if let ranks {
            p.executableURL = URL(fileURLWithPath: wrap.first ?? mpirun)
            p.arguments = Array(wrap.dropFirst()) + (wrap.isEmpty ? [] : [mpirun]) + ["-np", "\(ranks)", "--bind-to", "none"] + launcher + [binary] + args
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
        }
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.environment = environment
        let outFile = dir + "/.stdout-\(UInt32.random(in: 0...UInt32.max))", errFile = outFile + ".err"
        FileManager.default.createFile(atPath: outFile, contents: nil)
        FileManager.default.createFile(atPath: errFile, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: outFile)
        p.standardError = FileHandle(forWritingAtPath: errFile)
        let t0 = Date()
        try p.run()
        started?(p)
        while p.isRunning, Date().timeIntervalSince(t0) < timeout { usleep(50_000) }
        if p.isRunning {
            p.terminate()
            usleep(500_000)
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(t0)
        let out = (try? String(contentsOfFile: outFile, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
        return Result(status: p.terminationStatus, out: out, err: err + (seconds >= timeout ? "\n(stopped after \(Int(timeout)) s)" : ""), seconds: seconds)
    }

    /// A safetensors file's tensors by name, as numbers.
    static func tensors(_ path: String) throws -> [String: [Float]] {
        Dictionary(try SafeTensors.read(path).map { ($0.name, $0.tensor.scalars) }, uniquingKeysWith: { p, _ in p })
    }

    /// The largest difference between two safetensors files' tensors of the same name (every
    /// name must be in both).
    static func largestDifference(_ a: String, _ b: String) throws -> (Float, String) {
        let x = Dictionary(try SafeTensors.read(a).map { ($0.name, $0.tensor) }, uniquingKeysWith: { p, _ in p })
        let y = Dictionary(try SafeTensors.read(b).map { ($0.name, $0.tensor) }, uniquingKeysWith: { p, _ in p })
        guard Set(x.keys) == Set(y.keys) else { return (.infinity, "other names") }
        var worst: Float = 0, at = ""
        for (name, t) in x {
            guard let u = y[name], u.shape == t.shape else { return (.infinity, name) }
            let d = zip(t.scalars, u.scalars).map { abs($0 - $1) }.max() ?? 0
            if d > worst || d.isNaN { worst = d; at = name }
        }
        return (worst, at)
    }

    /// The process of `rank` among this machine's trickbook processes running `script`.
    static func pid(ofRank rank: Int, running script: String) -> Int32? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for e in entries {
            guard let pid = Int32(e), let cmd = FileManager.default.contents(atPath: "/proc/\(e)/cmdline"),
                  let env = FileManager.default.contents(atPath: "/proc/\(e)/environ") else { continue }
            let command = String(decoding: cmd, as: UTF8.self), variables = String(decoding: env, as: UTF8.self).split(separator: "\0")
            guard command.hasPrefix(binary), command.contains(script), variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") else { continue }
            return pid
        }
        return nil
    }
}
