// Data-parallel training over MPI, as PyTorch's DistributedDataParallel and Horovod do it: every
// process holds the whole model and trains on its own share of each global batch; the weights
// start equal (broadcast from rank 0) and stay equal because every process applies the same
// averaged gradient. Gradients are summed in buckets as backward produces them.

import Foundation
import TrickbookModels
import TrickbookMPI
import TrickbookTensor

public enum DataParallel {
    /// Whether this process is one of several (under mpirun with more than one rank).
    public static var active: Bool { MPI.running && MPI.size > 1 }
    /// The bytes of a bucket of gradients summed at once (about: a parameter is never split).
    public static let defaultBucketBytes = 1 << 20

    /// Refuses a model that is not the same on every rank (its tensors' names and shapes, then
    /// their values: a different seed gives other initial weights), then gives every rank rank 0's
    /// weights and buffers, bit for bit.
    public static func agree(on model: Module) throws {
        guard active else { return }
        let state = model.stateDict()
        var shapes = Fingerprint(), values = Fingerprint()
        for (name, t) in state {
            shapes.add(name)
            for d in t.shape { shapes.add(UInt64(d)) }
        }
        for (_, t) in model.namedParameters() { t.withUnsafeBufferPointer { for v in $0 { values.add(UInt64(v.bitPattern)) } } }
        let all = try MPI.gather([shapes.value, values.value, UInt64(state.count)])
        let otherShapes = all.indices.filter { all[$0][0] != all[0][0] }
        if !otherShapes.isEmpty {
            throw TrainingError(description: "data-parallel training: the model on rank \(list(otherShapes)) differs from rank 0's (\(state.count) tensors here; other names or shapes there): every rank must build the same model")
        }
        let otherValues = all.indices.filter { all[$0][1] != all[0][1] }
        if !otherValues.isEmpty {
            throw TrainingError(description: "data-parallel training: the initial weights on rank \(list(otherValues)) differ from rank 0's: every rank must make the model the same way, from the same seed")
        }
        try broadcast(state.map(\.1))
    }

    /// Rank 0's values of `tensors` to every rank, in one message.
    public static func broadcast(_ tensors: [Tensor]) throws {
        guard active else { return }
        let total = tensors.reduce(0) { $0 + $1.count }
        var packed = [Float](repeating: 0, count: total)
        var at = 0
        for t in tensors {
            t.withUnsafeBufferPointer { b in for (i, v) in b.enumerated() { packed[at + i] = v } }
            at += t.count
        }
        try packed.withUnsafeMutableBytes { try MPI.broadcast($0) }
        at = 0
        for t in tensors {
            t.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] = packed[at + i] } }
            at += t.count
        }
    }

    /// Makes every batch norm of `model` synchronised: its statistics over the global batch (the
    /// sum of every rank's), the same on every rank. Returns how many layers changed; with one
    /// process, none do.
    @discardableResult
    public static func synchronizeBatchNorm(_ model: Module, _ on: Bool = true) -> Int {
        var n = 0
        for (_, m) in model.namedModules() {
            guard let bn = m as? BatchNorm2d else { continue }
            bn.synchronize = on && active ? { values in try MPI.sum(&values) } : nil
            n += 1
        }
        return active ? n : 0
    }

    private static func list(_ ranks: [Int]) -> String {
        ranks.count == 1 ? "\(ranks[0])" : ranks.map(String.init).joined(separator: ", ")
    }
}

/// Averages the gradients of a model's parameters over every rank after backward (DDP's reducer,
/// Horovod's tensor fusion): the parameters are grouped in buckets of about `bucketBytes`, in the
/// reverse of their order (the order backward finishes them); a bucket's sum across ranks starts
/// as soon as its last gradient has accumulated, while backward goes on with earlier layers.
/// Buckets start in their order on every rank, as MPI needs. `finish()`, before the optimizer
/// step, waits for them and writes the averages back.
final class GradientReducer {
    private struct Bucket {
        let members: [Int]  // parameter indices
        let offset: Int  // of its first value in `buffer`
        let count: Int
        var ready = 0
        var request: MPI.Request? = nil
        /// A gradient of it changed after it started (a second backward before the step).
        var stale = false
    }

    private let params: [Tensor]
    private var buckets: [Bucket] = []
    private var place: [Int] = []  // each parameter's bucket
    private var next = 0  // the next bucket to start
    /// Whether backward's gradients are for a step: from the optimizer's zero_grad to its step.
    /// A backward at another time (a saliency map, on one rank alone) starts no sum.
    private var armed = false
    private let buffer: UnsafeMutablePointer<Float>
    private let total: Int
    /// Seconds spent in MPI's calls (starting sums, moving them on, waiting for them), since made.
    private(set) var communicationSeconds = 0.0
    /// Bucket sums started from backward's hooks (overlapping the rest of the pass), since made;
    /// the others start when the optimizer steps.
    private(set) var startedInBackward = 0

    init(_ params: [Tensor], bucketBytes: Int = DataParallel.defaultBucketBytes) {
        self.params = params
        total = params.reduce(0) { $0 + $1.count }
        buffer = .allocate(capacity: max(total, 1))
        buffer.initialize(repeating: 0, count: max(total, 1))
        place = Array(repeating: 0, count: params.count)
        var members: [Int] = [], size = 0, offset = total
        func close() {
            guard !members.isEmpty else { return }
            offset -= size
            for i in members { place[i] = buckets.count }
            buckets.append(Bucket(members: members, offset: offset, count: size))
            members = []
            size = 0
        }
        // Buckets from the last parameter back; a bucket's values are its members' in
        // parameter order, laid out from the end of the buffer.
        for i in params.indices.reversed() {
            if size > 0, (size + params[i].count) * 4 > bucketBytes { close() }
            members.insert(i, at: 0)
            size += params[i].count
        }
        close()
        for (i, p) in params.enumerated() {
            p.addGradientHook(owner: self) { [weak self] in try self?.gradientReady(i) }
        }
    }

    deinit {
        for p in params { p.removeGradientHooks(owner: self) }
        buffer.deinitialize(count: max(total, 1))
        buffer.deallocate()
    }

    var bucketCount: Int { buckets.count }

    /// A step's backward is coming (the optimizer cleared its gradients).
    func arm() { armed = true }

    private func gradientReady(_ i: Int) throws {
        guard armed else { return }
        let b = place[i]
        if buckets[b].request != nil {
            buckets[b].stale = true
            return
        }
        buckets[b].ready += 1
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        while next < buckets.count, buckets[next].ready >= buckets[next].members.count {
            try start(next)
            startedInBackward += 1
        }
        MPI.progress()
    }

    /// Copies bucket b's gradients into the buffer (zeros for a parameter without one) and starts
    /// their sum.
    private func start(_ b: Int) throws {
        pack(b)
        let bucket = buckets[b]
        buckets[b].request = try MPI.startSum(UnsafeMutableBufferPointer(start: buffer + bucket.offset, count: bucket.count))
        next = b + 1
    }

    private func pack(_ b: Int) {
        var at = buckets[b].offset
        for i in buckets[b].members {
            let p = params[i], n = p.count
            if let g = p.grad {
                g.withUnsafeBufferPointer { src in
                    if let base = src.baseAddress { (buffer + at).update(from: base, count: n) }
                }
            } else {
                (buffer + at).update(repeating: 0, count: n)
            }
            at += n
        }
    }

    /// Waits for every bucket (starting those backward did not finish) and puts the average over
    /// the ranks into each gradient. `stats` are summed across ranks in the same exchange (a
    /// step's loss and counts); returned summed.
    func finish(stats: [Double] = []) throws -> [Double] {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        while next < buckets.count { try start(next) }
        // One small sum says which parameters have a gradient on some rank and whether some
        // rank's buckets went stale; the step's statistics ride along.
        var small = [Double](repeating: 0, count: params.count + 1)
        for (i, p) in params.enumerated() where p.grad != nil { small[i] = 1 }
        small[params.count] = buckets.contains { $0.stale } ? 1 : 0
        small += stats
        try MPI.sum(&small)
        for b in buckets.indices { try buckets[b].request?.wait() }
        if small[params.count] > 0 {
            // A second backward added to gradients after their bucket had gone: sum them again.
            for b in buckets.indices {
                pack(b)
                try MPI.sum(UnsafeMutableBufferPointer(start: buffer + buckets[b].offset, count: buckets[b].count))
            }
        }
        let scale = 1 / Float(MPI.size)
        for b in buckets.indices {
            var at = buckets[b].offset
            for i in buckets[b].members {
                let p = params[i], n = p.count
                defer { at += n }
                guard small[i] > 0 else { continue }  // no rank had a gradient: the step skips it
                if p.grad == nil { p.grad = try Tensor.zeros(p.shape) }
                p.grad?.withUnsafeMutableBufferPointer { g in
                    for k in 0..<n { g[k] = buffer[at + k] * scale }
                }
            }
            buckets[b].ready = 0
            buckets[b].request = nil
            buckets[b].stale = false
        }
        next = 0
        armed = false
        return Array(small[(params.count + 1)...])
    }
}
