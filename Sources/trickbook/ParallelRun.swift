import ArgumentParser
import Foundation
import TrickbookFiles
import TrickbookMPI
import TrickbookNotebook
import TrickbookREPL

/// `mpirun -np N trickbook run notebook.tb`: MPI starts, the ranks check that they run the same
/// thing, and rank 0 alone prints and writes files. Without a launcher nothing happens here.
enum ParallelRun {
    /// Starts MPI under a launcher; refuses ranks that run another notebook, seed or parameters
    /// (or another trickbook) than rank 0 (each says which). Then every rank but 0 is silenced:
    /// its standard output goes nowhere and it writes no files; errors still show, with the rank.
    static func start(_ notebook: Notebook, seed: Int, quick: Bool, cells: String, parameters: [String]) throws {
        guard MPI.launched else { return }
        try MPI.start()
        guard MPI.size > 1 else { return }
        var text = Fingerprint(), options = Fingerprint(), build = Fingerprint()
        for c in notebook.cells { text.add(c.source) }
        options.add(quick ? 1 : 0)
        options.add(cells)
        for p in parameters.sorted() { options.add(p) }
        build.add(trickbookVersion)
        let mine: [UInt64] = [text.value, UInt64(bitPattern: Int64(seed)), options.value, build.value]
        let all = try MPI.gather(mine)
        let what = ["the notebook's text", "the seed", "the options (--quick, --cells, --set)", "the trickbook version"]
        var differences: [String] = []
        for (k, name) in what.enumerated() {
            let ranks = all.indices.filter { all[$0][k] != all[0][k] }
            guard !ranks.isEmpty else { continue }
            let detail = k == 1 ? ranks.map { "rank \($0) has \(Int64(bitPattern: all[$0][1]))" }.joined(separator: ", ") + ", rank 0 \(seed)"
                : "on rank" + (ranks.count == 1 ? " " : "s ") + ranks.map(String.init).joined(separator: ", ")
            differences.append("\(name) differs from rank 0's (\(detail))")
        }
        if !differences.isEmpty {
            if MPI.rank == 0 {
                let message = "error: the \(MPI.size) ranks of this run disagree: " + differences.joined(separator: "; ") + ". Every rank must run the same notebook with the same seed and options.\n"
                FileHandle.standardError.write(Data(message.utf8))
            }
            MPI.finish()
            throw ExitCode(2)
        }
        if MPI.rank != 0 {
            _ = freopen("/dev/null", "w", stdout)
            FileWrites.enabled = false
        }
    }

    /// Errors name their rank when there are several.
    static func label(_ session: Session) {
        guard MPI.running, MPI.size > 1 else { return }
        let report = session.errorOutput, rank = MPI.rank
        session.errorOutput = { report("[rank \(rank)] " + $0) }
    }

    /// A failed cell: with several ranks the others may be waiting for this one in a collective,
    /// so the whole job stops now (the launcher names the rank).
    static func failed(_ code: Int32) -> Int32 {
        if MPI.running, MPI.size > 1 {
            fflush(stdout)
            MPI.abort(code)
        }
        return code
    }

    /// The end of a run: every rank waits for the others.
    static func finish() { MPI.finish() }
}
