import Foundation
import TrickbookTensor

/// Labelled images, read by index.
public protocol Dataset {
    var count: Int { get }
    var classNames: [String] { get }
    func item(_ i: Int) throws -> (Image, Int)
}

/// A dataset held in memory as bytes (0–255): Fashion-MNIST, CIFAR.
public struct MemoryDataset: Dataset {
    public let channels: Int, height: Int, width: Int
    let bytes: [UInt8]
    public let labels: [Int]
    public let classNames: [String]

    public init(channels: Int, height: Int, width: Int, bytes: [UInt8], labels: [Int], classNames: [String]) {
        (self.channels, self.height, self.width, self.bytes, self.labels, self.classNames) = (channels, height, width, bytes, labels, classNames)
    }

    public var count: Int { labels.count }

    public func item(_ i: Int) throws -> (Image, Int) {
        guard i >= 0 && i < count else { throw TensorError("dataset", "index \(i) out of range for \(count) images") }
        let n = channels * height * width
        let px = bytes[(i * n)..<((i + 1) * n)].map(Float.init)
        return (Image(channels: channels, height: height, width: width, pixels: px), labels[i])
    }
}

/// Some of another dataset's items, in a given order.
public struct Subset: Dataset {
    public let base: any Dataset
    public let indices: [Int]
    public init(_ base: any Dataset, indices: [Int]) throws {
        for i in indices where i < 0 || i >= base.count {
            throw TensorError("subset", "index \(i) out of range for \(base.count) images")
        }
        self.base = base
        self.indices = indices
    }
    public var count: Int { indices.count }
    public var classNames: [String] { base.classNames }
    public func item(_ i: Int) throws -> (Image, Int) {
        guard i >= 0 && i < indices.count else { throw TensorError("subset", "index \(i) out of range for \(indices.count) images") }
        return try base.item(indices[i])
    }
}

extension Dataset {
    /// The first n items.
    public func limited(_ n: Int) throws -> Subset { try Subset(self, indices: Array(0..<max(0, min(n, count)))) }

    /// A random split by seed: (train, validation) with `validation` items in the second.
    public func split(validation: Int, seed: UInt64) throws -> (Subset, Subset) {
        guard validation >= 0 && validation <= count else { throw TensorError("split", "validation size \(validation) is not in 0…\(count)") }
        let p = try permutationIndices(count, generator: Generator(seed: seed))
        return (try Subset(self, indices: Array(p[validation...]).sorted()), try Subset(self, indices: Array(p[..<validation]).sorted()))
    }

    /// Labels of every item (reads each item; datasets in memory answer directly).
    public func allLabels() throws -> [Int] {
        if let m = self as? MemoryDataset { return m.labels }
        return try (0..<count).map { try item($0).1 }
    }
}

extension FashionMNIST {
    /// The split as a dataset with its class names.
    public static func dataset(_ split: String, directory: String? = nil, limit: Int? = nil) throws -> MemoryDataset {
        let (images, labels) = try load(split, directory: directory, limit: limit)
        return MemoryDataset(channels: 1, height: 28, width: 28, bytes: images.scalars.map { UInt8($0) }, labels: labels, classNames: classNames)
    }
}

/// CIFAR-10 and CIFAR-100 binary batches: records of a label byte (CIFAR-100: coarse then fine)
/// and 3×32×32 pixel bytes, channel planes in order R, G, B.
public enum CIFAR {
    public static let cifar10Classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    public static func load(files: [String], hundred: Bool = false, classNames: [String]? = nil) throws -> MemoryDataset {
        let labelBytes = hundred ? 2 : 1, record = labelBytes + 3072
        var pixels: [UInt8] = [], labels: [Int] = []
        for path in files {
            guard let data = FileManager.default.contents(atPath: path) else { throw IDX.DataError(path, "cannot read (no such file?)") }
            guard data.count > 0, data.count % record == 0 else {
                throw IDX.DataError(path, "size \(data.count) is not a whole number of \(record)-byte CIFAR-\(hundred ? 100 : 10) records")
            }
            let bytes = [UInt8](data)
            for r in 0..<(bytes.count / record) {
                let o = r * record
                let label = Int(bytes[o + labelBytes - 1])
                guard label < (hundred ? 100 : 10) else { throw IDX.DataError(path, "record \(r) has label \(label)") }
                labels.append(label)
                pixels += bytes[(o + labelBytes)..<(o + record)]
            }
        }
        return MemoryDataset(channels: 3, height: 32, width: 32, bytes: pixels, labels: labels,
                             classNames: classNames ?? (hundred ? (0..<100).map { "class \($0)" } : cifar10Classes))
    }
}
