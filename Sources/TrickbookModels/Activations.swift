import TrickbookTensor

/// What one module put out during a forward pass: its output's shape, mean and standard deviation.
public struct ActivationStats {
    public let name: String
    public let kind: String
    public let shape: [Int]
    public let mean: Double, std: Double
}

/// Collects the output of every module (leaf or not) during one forward pass.
final class ActivationProbe {
    @TaskLocal static var current: ActivationProbe?
    var outputs: [(Module, [Int], Double, Double)] = []
    func record(_ m: Module, _ y: Tensor) {
        var sum = 0.0, sq = 0.0
        y.withUnsafeBufferPointer { b in for v in b { sum += Double(v); sq += Double(v) * Double(v) } }
        let n = Double(max(1, y.count)), mean = sum / n
        outputs.append((m, y.shape, mean, max(0, sq / n - mean * mean).squareRoot()))
    }
}

extension Module {
    /// Runs `input` through the model (evaluation mode unless `inTraining`, no gradients) and
    /// returns the output statistics of every module that `keep` accepts, in the order they ran;
    /// the whole model is named "output". To see, for example, that zero-gamma blocks start as the
    /// identity. In training mode batch norm normalizes with the batch's own statistics, as it
    /// does while training; the running statistics it updates are put back afterwards.
    public func activations(_ input: Tensor, inTraining: Bool = false, keep: (Module) -> Bool = { _ in true }) throws -> [ActivationStats] {
        let probe = ActivationProbe()
        let wasTraining = training
        let saved = inTraining ? Dictionary(namedBuffers().map { ($0.0, $0.1.copy()) }, uniquingKeysWith: { a, _ in a }) : [:]
        train(inTraining)
        defer { train(wasTraining) }
        _ = try ActivationProbe.$current.withValue(probe) { try withNoGrad { try self(input) } }
        if inTraining { _ = try load(saved, source: "the running statistics before activations()", strict: false) }
        var names: [ObjectIdentifier: String] = [:]
        for (n, m) in namedModules() { names[ObjectIdentifier(m)] = n.isEmpty ? "output" : n }
        return probe.outputs.filter { keep($0.0) || $0.0 === self }.map { m, shape, mean, std in
            ActivationStats(name: names[ObjectIdentifier(m)] ?? "?", kind: m.typeName, shape: shape, mean: mean, std: std)
        }
    }
}
