import ArgumentParser
import Foundation
import TrickbookTensor

/// `trickbook demo`: a short walk through the engine: a tiny conv net learns to tell two
/// synthetic patterns apart, with gradients from the autodiff engine and plain SGD.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A short demonstration of the tensor engine and autodiff.")

    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Training steps.") var steps: Int = 60

    func run() throws {
        Random.seed(seed)
        let gen = Generator(seed: seed)
        print("trickbook engine demo (BLAS: \(BLAS.status.core), \(Threads.count) threads)")
        // Two classes of 1×12×12 images: horizontal or vertical stripes, with noise.
        func batch(_ n: Int) throws -> (Tensor, Tensor) {
            var pixels: [Float] = [], labels: [Float] = []
            for _ in 0..<n {
                let label = gen.int(below: 2), phase = gen.int(below: 3)
                for y in 0..<12 { for x in 0..<12 {
                    let stripe = ((label == 0 ? y : x) + phase) % 3 == 0 ? Float(1) : 0
                    pixels.append(stripe + 0.3 * gen.normal())
                } }
                labels.append(Float(label))
            }
            return (try Tensor(pixels, shape: [n, 1, 12, 12]), try Tensor(labels, shape: [n]))
        }
        func param(_ shape: [Int], fanIn: Int) throws -> Tensor {
            let bound = (6 / Float(fanIn)).squareRoot()
            let t = try Tensor.uniform(shape, low: -bound, high: bound, generator: gen)
            t.requiresGrad = true
            return t
        }
        let w1 = try param([8, 1, 3, 3], fanIn: 9), w2 = try param([2, 8], fanIn: 8)
        let b2 = try Tensor.zeros([2]); b2.requiresGrad = true
        let params = [w1, w2, b2]
        func forward(_ x: Tensor) throws -> Tensor {
            let h = try x.conv2d(weight: w1, padding: (1, 1)).relu().maxPool2d(kernel: (2, 2))
            return try h.globalAvgPool2d().flattened(from: 1).linear(weight: w2, bias: b2)
        }
        for step in 1...max(1, steps) {
            let (x, y) = try batch(32)
            let logp = try forward(x).logSoftmax(axis: 1)
            let loss = try (logp * y.oneHot(classes: 2)).sum().neg() / 32
            params.forEach { $0.zeroGrad() }
            try loss.backward()
            try withNoGrad { for p in params { if let g = p.grad { try p.update(subtracting: g, scale: 0.5) } } }
            if step % 20 == 0 || step == 1 { print(String(format: "step %3d  loss %.4f", step, loss.item)) }
        }
        let (x, y) = try batch(256)
        let pred = try withNoGrad { try forward(x).argmax(axis: 1) }
        let accuracy = try pred.eq(y).mean().item
        print(String(format: "held-out accuracy on 256 new images: %.1f%%", accuracy * 100))
    }
}
