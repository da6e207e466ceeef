import Foundation
import TrickbookTensor

/// Running classification metrics: top-1, top-5, mean loss, per-class accuracy, the confusion
/// matrix and images/s.
public struct Metrics {
    public let classes: Int
    public private(set) var count = 0
    public private(set) var top1Correct = 0
    public private(set) var top5Correct = 0
    private var lossSum = 0.0, lossCount = 0
    /// confusion[true][predicted]
    public private(set) var confusion: [[Int]]
    private let start = DispatchTime.now().uptimeNanoseconds

    public init(classes: Int) {
        self.classes = classes
        confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    }

    /// Adds a batch: logits [N, K], labels, and the batch's mean loss if known.
    public mutating func add(logits: Tensor, labels: [Int], loss: Float? = nil) throws {
        guard logits.rank == 2, logits.shape[1] == classes, logits.shape[0] == labels.count else {
            throw TensorError("metrics", "logits \(logits.shape) do not match \(labels.count) labels of \(classes) classes")
        }
        let k = min(5, classes)
        let top = try logits.topk(k, axis: 1).indices.scalars
        for (i, label) in labels.enumerated() {
            guard label >= 0 && label < classes else { throw TensorError("metrics", "label \(label) is not in 0..<\(classes)") }
            let row = top[(i * k)..<(i * k + k)].map { Int($0) }
            if row[0] == label { top1Correct += 1 }
            if row.contains(label) { top5Correct += 1 }
            confusion[label][row[0]] += 1
        }
        count += labels.count
        if let loss { lossSum += Double(loss) * Double(labels.count); lossCount += labels.count }
    }

    public var top1: Double { count == 0 ? 0 : Double(top1Correct) / Double(count) }
    public var top5: Double { count == 0 ? 0 : Double(top5Correct) / Double(count) }
    public var meanLoss: Double { lossCount == 0 ? .nan : lossSum / Double(lossCount) }
    public var perClassAccuracy: [Double] {
        confusion.enumerated().map { i, row in
            let n = row.reduce(0, +)
            return n == 0 ? .nan : Double(row[i]) / Double(n)
        }
    }
    public var imagesPerSecond: Double {
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return s > 0 ? Double(count) / s : 0
    }
}
