import Foundation
import Testing
import TrickbookModels

/// Data-parallel training over MPI, run as users run it: `mpirun -np N trickbook run script.tb`.
/// Serialized: each run uses both cores.
@Suite(.serialized, .enabled(if: MPIRun.available, "needs Open MPI (apt install libopenmpi-dev openmpi-bin)"))
struct DataParallelTests {
    func script(_ name: String) -> String { MPIRun.scripts + "/" + name }

    @Test func withoutALauncherTheWorldIsOneProcess() throws {
        let dir = try MPIRun.directory()
        let source = dir + "/world.tb"
        try "print(\"rank {rank} of {world_size}\")\nprint(all_sum([1, 2.5]))\nprint(sync_bn(resnet(20, in_channels: 1, classes: 10, width: 8)))\n"
            .write(toFile: source, atomically: true, encoding: .utf8)
        let r = try MPIRun.run(["run", source], mpi: nil, in: dir)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("rank 0 of 1") && r.out.contains("[1, 2.5]") && r.out.contains("\n0\n"), "\(r.out)")
    }

    /// `as_ranks` makes one process compute as ranks do; under mpirun it is refused, with where.
    @Test func asRanksIsForOneProcess() throws {
        let dir = try MPIRun.directory()
        let source = dir + "/as-ranks.tb"
        try "print(as_ranks(2))\nprint(as_ranks(1))\n".write(toFile: source, atomically: true, encoding: .utf8)
        let one = try MPIRun.run(["run", source], mpi: nil, in: dir)
        #expect(one.status == 0 && one.out.contains("1\n2\n"), "\(one.out)\(one.err)")
        let two = try MPIRun.run(["run", source], mpi: 2, in: dir)
        #expect(two.status != 0 && two.err.contains("as-ranks.tb:1:7: error: as_ranks(2) is for one process"), "\(two.err)")
    }

    @Test func shardsAreDisjointAndTogetherTheOneProcessBatch() throws {
        let dir = try MPIRun.directory()
        for ranks in [2, 3] {
            let r = try MPIRun.run(["run", script("shards.tb")], mpi: ranks, in: dir)
            #expect(r.status == 0, "\(ranks) ranks: \(r.err)")
            #expect(r.out.contains("on \(ranks) ranks agree with one process"), "\(r.out)")
            // Rank 0 alone prints: one line, not one per rank.
            #expect(r.out.components(separatedBy: "agree with one process").count == 2, "\(r.out)")
        }
    }

    /// The losses a script printed, by step ("step N: loss X").
    func losses(_ out: String) -> [Int: Double] {
        var found: [Int: Double] = [:]
        for line in out.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            guard let at = line.range(of: "step ") else { continue }
            let words = line[at.upperBound...].split(separator: " ")
            guard words.count >= 3, let n = Int(words[0].dropLast()), words[1] == "loss", let x = Double(words[2].trimmingCharacters(in: .punctuationCharacters)) else { continue }
            found[n] = x
        }
        return found
    }

    /// DDP's correctness check: N ranks of batch b with synchronised batch norm train as one
    /// process of batch N·b. Bitwise: one process computing as 2 ranks do (`as_ranks(2)`: each
    /// share's sums taken as a rank takes them, then added) has the 2 ranks' weights after 20
    /// steps exactly. Without it, the first update agrees to rounding, and later steps drift apart
    /// as FP32 sums in another order do: one process on 1 and on 2 threads drifts as much (printed).
    @Test func twoRanksTrainAsOneProcessOfTheGlobalBatch() throws {
        let dir = try MPIRun.directory()
        let s = script("same-weights.tb")
        // 20 steps on 2 ranks, and on one process computing as 2 ranks: the same weights, bit for bit.
        let b = try MPIRun.run(["run", s], mpi: 2, in: dir)
        #expect(b.status == 0, "\(b.err)")
        #expect(b.out.contains("20 steps on 2 ranks, 23 synchronised batch norms"), "\(b.out)")
        let shared = try MPIRun.run(["run", s, "--set", "as_ranks=2"], mpi: nil, in: dir)
        #expect(shared.status == 0, "\(shared.err)")
        let (gap, at) = try MPIRun.largestDifference(dir + "/weights-1.safetensors", dir + "/weights-2.safetensors")
        #expect(gap == 0, "after 20 steps, one process as 2 ranks and 2 ranks differ by \(gap) in \(at)")
        let ls = losses(shared.out), lb = losses(b.out)
        // (The losses are reported the ways the two runs average them: the global batch's mean,
        // and the mean of the ranks' means, so only to rounding.)
        #expect(ls.count == 20 && lb.count == 20 && ls.allSatisfy { n, x in abs(x - (lb[n] ?? .nan)) <= 2e-6 * x },
                "losses as 2 ranks \(ls), on 2 ranks \(lb)")
        let fm = FileManager.default
        try fm.moveItem(atPath: dir + "/weights-2.safetensors", toPath: dir + "/ranks-20.safetensors")
        try fm.removeItem(atPath: dir + "/weights-1.safetensors")
        // Plainly one process: the first update, from the same initial weights, agrees to rounding.
        #expect(try MPIRun.run(["run", s, "--set", "steps=0"], mpi: nil, in: dir).status == 0)
        try fm.moveItem(atPath: dir + "/weights-1.safetensors", toPath: dir + "/start.safetensors")
        #expect(try MPIRun.run(["run", s, "--set", "steps=1"], mpi: nil, in: dir).status == 0)
        let two1 = try MPIRun.run(["run", s, "--set", "steps=1"], mpi: 2, in: dir)
        #expect(two1.status == 0, "\(two1.err)")
        let start = try MPIRun.tensors(dir + "/start.safetensors"), one = try MPIRun.tensors(dir + "/weights-1.safetensors")
        let two = try MPIRun.tensors(dir + "/weights-2.safetensors")
        var worst: (Float, String) = (0, "")
        for (name, w0) in start where !name.hasSuffix("num_batches_tracked") {
            let u1 = zip(try #require(one[name]), w0).map { $0 - $1 }, u2 = zip(try #require(two[name]), w0).map { $0 - $1 }
            let size = u1.map(abs).max() ?? 0, gap = zip(u1, u2).map { abs($0 - $1) }.max() ?? 0
            let relative = gap / max(size, 1e-6)
            if relative > worst.0 || relative.isNaN { worst = (relative, name) }
        }
        print("first update, 2 ranks of 64 against 1 process of 128: largest difference \(worst.0) of the update (\(worst.1))")
        #expect(worst.0 <= 2e-3, "\(worst.1): the updates differ by \(worst.0) of their size")
        // 20 steps plainly: the global losses of the first two steps agree; the drift after 20
        // steps is printed beside one process's own between 1 and 2 threads.
        let a = try MPIRun.run(["run", s], mpi: nil, in: dir)
        #expect(a.status == 0, "\(a.err)")
        let la = losses(a.out)
        for n in 1...2 {
            let x = try #require(la[n]), y = try #require(lb[n])
            #expect(abs(x - y) <= 1e-5 * x, "step \(n): loss \(x) on one process, \(y) on two ranks")
        }
        try fm.moveItem(atPath: dir + "/weights-1.safetensors", toPath: dir + "/one-thread.safetensors")
        var threads = MPIRun.environment
        threads["TRICKBOOK_THREADS"] = "2"
        #expect(try MPIRun.run(["run", s], mpi: nil, in: dir, environment: threads).status == 0)
        let (ranks, rname) = try MPIRun.largestDifference(dir + "/one-thread.safetensors", dir + "/ranks-20.safetensors")
        let (drift, dname) = try MPIRun.largestDifference(dir + "/one-thread.safetensors", dir + "/weights-1.safetensors")
        print("after 20 steps: 1 process against 2 ranks \(ranks) (\(rname)); 1 process on 1 thread against 2 threads \(drift) (\(dname))")
    }

    /// A second optimizer of the same model (a learning-rate search makes one) does not take the
    /// first's gradient hooks: the one that trains starts every bucket's sum during backward,
    /// while the second exists and after it is freed.
    @Test func twoOptimizersOfOneModelKeepTheirOwnHooks() throws {
        let dir = try MPIRun.directory()
        let r = try MPIRun.run(["run", script("two-optimizers.tb")], mpi: 2, in: dir)
        #expect(r.status == 0, "\(r.err)")
        let last = r.out.split(separator: "\n").last ?? ""
        let words = last.split(separator: " ")
        let started = try #require(words.first.flatMap { Int($0) }, "\(r.out)")
        let all = try #require(words.count > 2 ? Int(words[2]) : nil, "\(r.out)")
        #expect(all > 0 && started == all, "\(r.out)")
        #expect(r.out.contains("the other optimizer started 0\n"), "\(r.out)")
    }

    /// A checkpoint of 2 ranks resumes on 1 process, and on 4 ranks: the first step after
    /// resuming has the loss the 2 ranks had at that step (the global batch and synchronised
    /// batch norm make the run the same; only the order of the sums differs).
    @Test func aCheckpointOfTwoRanksResumesOnOneAndOnFour() throws {
        let dir = try MPIRun.directory()
        let straight = try MPIRun.run(["run", script("checkpoint.tb"), "--set", "epochs=2", "--set", "tag=straight"], mpi: 2, in: dir)
        #expect(straight.status == 0, "\(straight.err)")
        let first = try MPIRun.run(["run", script("checkpoint.tb"), "--set", "epochs=1", "--set", "tag=first"], mpi: 2, in: dir)
        #expect(first.status == 0, "\(first.err)")
        #expect(try SafeTensors.metadata(dir + "/checkpoint.safetensors")["trickbook.epoch"] == "1")
        let before = losses(straight.out)
        #expect(before.count == 32)
        let x = try #require(before[17])
        let fm = FileManager.default, checkpoint = dir + "/checkpoint.safetensors", epoch1 = dir + "/epoch-1.safetensors"
        try fm.copyItem(atPath: checkpoint, toPath: epoch1)
        for ranks in [1, 4] {
            // Each from epoch 1's checkpoint (a resumed run writes its own after epoch 2).
            if fm.fileExists(atPath: checkpoint) { try fm.removeItem(atPath: checkpoint) }
            try fm.copyItem(atPath: epoch1, toPath: checkpoint)
            let resumed = try MPIRun.run(["run", script("checkpoint.tb"), "--set", "epochs=2", "--set", "resume=true", "--set", "tag=resumed"],
                                         mpi: ranks == 1 ? nil : ranks, in: dir)
            #expect(resumed.status == 0, "\(resumed.err)")
            #expect(resumed.out.contains("trained epochs 2 to 2 on \(ranks) ranks"), "\(resumed.out)")
            let after = losses(resumed.out)
            #expect(after.count == 16 && after[17] != nil, "\(after)")
            let y = try #require(after[17])
            #expect(abs(x - y) <= (ranks == 1 ? 1e-6 : 1e-5) * x, "the first step after resuming: \(y) on \(ranks) ranks, \(x) on 2 ranks")
        }
    }

    /// Local batch norm (each rank's 64 images' statistics, the paper's setting) changes the
    /// computation, not the result: over 3 seeds, 2 ranks of 64 reach one process of 128's test
    /// accuracy within the seeds' spread (the difference of the means under 3 standard errors).
    @Test func localBatchNormMatchesOneProcessWithinTheSeedSpread() throws {
        let dir = try MPIRun.directory()
        func accuracy(_ out: String) -> Double? {
            out.split(separator: "\n").first { $0.contains("test top-1 0") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        var one: [Double] = [], two: [Double] = []
        var threads = MPIRun.environment
        threads["TRICKBOOK_THREADS"] = "2"
        for seed in 0..<3 {
            let a = try MPIRun.run(["run", script("accuracy.tb"), "--seed", "\(seed)"], mpi: nil, in: dir, environment: threads)
            let b = try MPIRun.run(["run", script("accuracy.tb"), "--seed", "\(seed)"], mpi: 2, in: dir)
            one.append(try #require(accuracy(a.out), "\(a.err)"))
            two.append(try #require(accuracy(b.out), "\(b.err)"))
        }
        func stats(_ x: [Double]) -> (mean: Double, variance: Double) {
            let m = x.reduce(0, +) / Double(x.count)
            return (m, x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(x.count - 1))
        }
        let (m1, v1) = stats(one), (m2, v2) = stats(two)
        let se = ((v1 + v2) / 3).squareRoot()
        print("test top-1 over 3 seeds: one process of 128 \(one), mean \(m1); 2 ranks of 64 \(two), mean \(m2); difference \(m2 - m1), standard error \(se)")
        #expect(abs(m2 - m1) <= 3 * se + 0.002, "the means differ by \(m2 - m1), the standard error is \(se)")
        #expect(m2 > 0.7, "2 ranks trained to \(m2)")
    }

    @Test func theNotebookRunsOnTwoRanks() throws {
        let dir = try MPIRun.directory()
        let r = try MPIRun.run(["run", MPIRun.root.path + "/notebooks/19-many-processes.tb", "--quick"], mpi: 2, in: dir)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("rank 0 has 64 of the first global batch's 128 images"), "\(r.out)")
        #expect(r.out.contains("2 rank(s), global batch 128: test top-1"), "\(r.out)")
    }

    @Test func ranksThatDisagreeAreRefused() throws {
        let dir = try MPIRun.directory()
        let s = script("same-weights.tb")
        let seeds = try MPIRun.run(["run", s, "--seed", "1", ":", "-np", "1", MPIRun.binary, "run", s, "--seed", "2"], mpi: 1, in: dir)
        #expect(seeds.status != 0)
        #expect(seeds.err.contains("the seed differs from rank 0's (rank 1 has 2, rank 0 1)"), "\(seeds.err)")
        let notebooks = try MPIRun.run(["run", s, ":", "-np", "1", MPIRun.binary, "run", script("checkpoint.tb")], mpi: 1, in: dir)
        #expect(notebooks.status != 0)
        #expect(notebooks.err.contains("the notebook's text differs from rank 0's (on rank 1)"), "\(notebooks.err)")
        let models = try MPIRun.run(["run", script("models.tb")], mpi: 2, in: dir)
        #expect(models.status != 0)
        #expect(models.err.contains("the model on rank 1 differs from rank 0's"), "\(models.err)")
        #expect(!models.out.contains("not reached"))
    }

    /// A rank killed with SIGKILL mid-epoch: mpirun stops the others (no rank hangs in a
    /// collective) and names the rank; the last checkpoint is whole and resumes.
    @Test func aKilledRankStopsTheRunAndTheCheckpointResumes() throws {
        let dir = try MPIRun.directory()
        var killedAt: Date?
        let name = script("checkpoint.tb")
        let r = try MPIRun.run(["run", name, "--set", "epochs=100", "--set", "tag=killed"], mpi: 2, in: dir, timeout: 300) { p in
            // Once the first checkpoint is there, rank 1 dies mid-epoch.
            let t0 = Date()
            while !FileManager.default.fileExists(atPath: dir + "/checkpoint.safetensors"), p.isRunning, Date().timeIntervalSince(t0) < 240 { usleep(100_000) }
            usleep(1_500_000)
            if let pid = MPIRun.pid(ofRank: 1, running: name) {
                kill(pid, SIGKILL)
                killedAt = Date()
            }
        }
        let killed = try #require(killedAt, "rank 1 was not found running")
        let stopped = Date().timeIntervalSince(killed)
        print("the run stopped \(String(format: "%.1f", stopped)) s after rank 1 was killed")
        #expect(r.status != 0)
        #expect(stopped < 30)
        #expect((r.err + r.out).contains("rank 1"), "\(r.err)")
        let done = try #require(SafeTensors.metadata(dir + "/checkpoint.safetensors")["trickbook.epoch"].flatMap { Int($0) })
        let resumed = try MPIRun.run(["run", name, "--set", "resume=true", "--set", "epochs=\(done + 1)", "--set", "tag=after"], mpi: 2, in: dir)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.out.contains("trained epochs \(done + 1) to \(done + 1) on 2 ranks"), "\(resumed.out)")
    }
}
