import Foundation
import TrickbookTensor

/// One batch: images [N, C, H, W], their labels and dataset indices.
public struct Batch {
    public let images: Tensor
    public let labels: [Int]
    public let indices: [Int]
    /// The global batch's size, of which this is one rank's share (data-parallel training);
    /// otherwise this batch's own.
    public let globalCount: Int

    public init(images: Tensor, labels: [Int], indices: [Int], globalCount: Int? = nil) {
        self.images = images
        self.labels = labels
        self.indices = indices
        self.globalCount = globalCount ?? labels.count
    }
}

/// Batches of a dataset: shuffled per epoch by seed, optionally dropping the last partial batch,
/// decoded and augmented on worker threads with a bounded prefetch queue. Every random draw comes
/// from (seed, epoch, position), so the batches are the same whatever the number of workers.
///
/// Sharded (data-parallel training, `shard` (rank, count)): each global batch of
/// `batchSize × count` positions of the epoch's one permutation is split into `count` disjoint
/// consecutive shares, and this loader gives share `rank`; every image is augmented as one
/// process would augment it at that position. So the ranks together see exactly what one process
/// sees at the global batch size. A last global batch smaller than `count` is dropped (a rank
/// would have no image).
public final class Loader {
    public let dataset: any Dataset
    public let batchSize: Int
    public let shuffle: Bool
    public let dropLast: Bool
    public let transform: (any Transform)?
    public let workers: Int
    public let prefetch: Int
    public let seed: UInt64
    /// The next epoch `epochBatches()` will produce.
    public var epoch = 0
    /// Which share of each global batch this loader gives: (0, 1) unless data-parallel.
    public let shard: (rank: Int, count: Int)
    /// The images of a full global batch: `batchSize` per rank.
    public let globalBatch: Int

    public init(_ dataset: any Dataset, batchSize: Int, shuffle: Bool = false, dropLast: Bool = false, transform: (any Transform)? = nil,
                workers: Int = 1, prefetch: Int = 4, seed: UInt64 = 0, shard: (rank: Int, count: Int) = (0, 1)) throws {
        guard batchSize > 0 else { throw TensorError("loader", "batch size must be positive, got \(batchSize)") }
        guard workers >= 0, prefetch >= 1 else { throw TensorError("loader", "needs workers >= 0 and prefetch >= 1") }
        guard shard.count >= 1, (0..<shard.count).contains(shard.rank) else {
            throw TensorError("loader", "shard \(shard.rank) of \(shard.count) does not exist")
        }
        let (global, overflow) = batchSize.multipliedReportingOverflow(by: shard.count)
        guard !overflow, global <= 1 << 40 else { throw TensorError("loader", "batch size \(batchSize) on \(shard.count) ranks is too large") }
        (self.dataset, self.batchSize, self.shuffle, self.dropLast, self.transform) = (dataset, batchSize, shuffle, dropLast, transform)
        (self.workers, self.prefetch, self.seed) = (workers, prefetch, seed)
        self.shard = shard
        globalBatch = global
    }

    /// Worker threads that build batches: none when the transform must run on the session's
    /// thread (one written in the language); then the consumer builds each batch itself.
    var activeWorkers: Int { transform?.runsOnAnyThread == false ? 0 : workers }

    public var batchCount: Int {
        let full = dataset.count / globalBatch, rest = dataset.count % globalBatch
        return full + (!dropLast && rest > 0 && rest >= shard.count ? 1 : 0)
    }

    /// splitmix of (seed, epoch, position): the generator of one image's augmentation.
    static func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        var z = a &* 0x9E37_79B9_7F4A_7C15 ^ b &* 0xC2B2_AE3D_27D4_EB4F ^ c &* 0x1656_67B1_9E37_79F9
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The dataset indices of this epoch, in order.
    func order(epoch: Int) throws -> [Int] {
        shuffle ? try permutationIndices(dataset.count, generator: Generator(seed: Loader.mix(seed, UInt64(epoch), 0xDA7A))) : Array(0..<dataset.count)
    }

    /// Builds batch b of an epoch (this rank's share of global batch b).
    func makeBatch(_ b: Int, order: [Int], epoch: Int) throws -> Batch {
        let first = b * globalBatch, m = min(order.count, first + globalBatch) - first
        let positions = (first + shard.rank * m / shard.count)..<(first + (shard.rank + 1) * m / shard.count)
        var images: [Image] = [], labels: [Int] = []
        for p in positions {
            var (im, label) = try dataset.item(order[p])
            if let transform { im = try transform(im, Generator(seed: Loader.mix(seed, UInt64(epoch), UInt64(p) &+ 1))) }
            images.append(im)
            labels.append(label)
        }
        return Batch(images: try stack(images), labels: labels, indices: positions.map { order[$0] }, globalCount: m)
    }

    /// The batches of the next epoch (and the epoch counter moves on).
    public func epochBatches() throws -> BatchIterator {
        defer { epoch += 1 }
        return BatchIterator(loader: self, order: try order(epoch: epoch), epoch: epoch)
    }
}

/// Iterates one epoch. With workers, batches are built ahead on threads (at most `prefetch` ahead
/// of the consumer) and handed out in order.
public final class BatchIterator {
    let loader: Loader
    let order: [Int]
    let epoch: Int
    private var next = 0
    private let condition = NSCondition()
    private var ready: [Int: Result<Batch, Error>] = [:]
    private var claimed = 0
    private var cancelled = false
    private var started = false

    init(loader: Loader, order: [Int], epoch: Int) {
        self.loader = loader
        self.order = order
        self.epoch = epoch
    }

    deinit {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    private func startWorkers() {
        started = true
        let total = loader.batchCount
        for _ in 0..<loader.activeWorkers {
            let transform = loader.transform
            let thread = Thread { [weak self] in
                let work = { [weak self] in
                    while true {
                        guard let self else { return }
                        self.condition.lock()
                        while !self.cancelled && self.claimed < total && self.claimed >= self.next + self.loader.prefetch { self.condition.wait() }
                        if self.cancelled || self.claimed >= total { self.condition.unlock(); return }
                        let b = self.claimed
                        self.claimed += 1
                        self.condition.unlock()
                        let result = Result { try self.loader.makeBatch(b, order: self.order, epoch: self.epoch) }
                        self.condition.lock()
                        self.ready[b] = result
                        self.condition.broadcast()
                        self.condition.unlock()
                    }
                }
                if let transform { transform.onWorker(work) } else { work() }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// The next batch, or nil at the end of the epoch.
    public func nextBatch() throws -> Batch? {
        guard next < loader.batchCount else { return nil }
        if loader.activeWorkers == 0 {
            defer { next += 1 }
            return try loader.makeBatch(next, order: order, epoch: epoch)
        }
        condition.lock()
        if !started { startWorkers() }
        while ready[next] == nil { condition.wait() }
        let result = ready.removeValue(forKey: next)
        next += 1
        condition.broadcast()
        condition.unlock()
        return try result?.get()
    }
}
