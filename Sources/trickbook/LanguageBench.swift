import ArgumentParser
import Foundation
import TrickbookAssets
import TrickbookBindings
import TrickbookScript

/// `trickbook bench step`: an epoch trained by a step written in the language (zero_grad,
/// forward, loss, backward, step) against the same epoch through `fit`, alternating.
struct StepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step", abstract: "An epoch of ResNet-20-D (batch 128) by a hand-written step in the language against fit().")
    @Option(help: "Training images per epoch.") var images: Int = 6400
    @Option(help: "Epochs of each, alternating.") var rounds: Int = 3

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        guard images >= 128, images <= 60000 else { throw ValidationError("--images must be in 128...60000") }
    }

    func run() throws {
        header()
        let i = benchSession()
        try i.run("""
        import "train"
        let train = fashion_mnist("train", limit: \(images))
        let augment = compose([pad_crop(28, padding: 2), hflip(), normalize(mean: [72.94], std: [90.02])])
        let loss = cross_entropy(smoothing: 0.1)
        fn setup() {
          let model = resnet(20, variant: "d", in_channels: 1, classes: 10, zero_gamma: true, seed: 1)
          let opt = sgd(model, warmup(cosine(0.2, 1000), 50), weight_decay: 5e-4, no_bias_decay: true)
          return [model, opt, loader(train, 128, shuffle: true, transform: augment, workers: 2, seed: 2)]
        }
        fn by_hand(model, batches, opt) {
          for b in batches {
            opt.zero_grad()
            model.train()
            let l = loss(model(b.images), b.labels)
            l.backward()
            opt.step()
          }
        }
        let a = setup()
        let h = setup()
        """, name: "setup")
        var fitTimes: [Double] = [], handTimes: [Double] = []
        for _ in 0..<rounds {
            fitTimes.append(try timed { try i.run("fit(a[0], a[2], a[1], loss)", name: "fit") })
            handTimes.append(try timed { try i.run("by_hand(h[0], h[2], h[1])", name: "hand") })
        }
        let f = fitTimes.sorted()[rounds / 2], hd = handTimes.sorted()[rounds / 2]
        print(String(format: "fit():               %6.2f s an epoch of %d images, %5.0f images/s (median of %d)", f, images, Double(images) / f, rounds))
        print(String(format: "hand-written step:   %6.2f s an epoch of %d images, %5.0f images/s", hd, images, Double(images) / hd))
        print(String(format: "the hand-written epoch takes %+.1f%% of fit's time", 100 * (hd / f - 1)))
    }
}

/// `trickbook bench transform`: a pad-crop-and-flip written in the language, run by the loader,
/// against the built-in transforms, over Fashion-MNIST's training images.
struct TransformBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transform", abstract: "Images/s of a pad-crop-flip written in the language against the built-ins (2 workers, and none).")
    @Option(help: "Training images.") var images: Int = 60000

    func validate() throws {
        guard images >= 1, images <= 60000 else { throw ValidationError("--images must be in 1...60000") }
    }

    func run() throws {
        let i = benchSession()
        try i.run("""
        import "augment"
        let train = fashion_mnist("train", limit: \(images))
        fn epoch(transform, workers) {
          var n = 0
          for b in loader(train, 256, shuffle: true, transform: transform, workers: workers, seed: 1) { n += b.size }
          return n
        }
        """, name: "setup")
        let builtin = "compose([pad_crop(28, padding: 2), hflip()])", script = "pad_crop_flip(28, padding: 2)"
        for (name, transform, workers) in [("built-in pad_crop + hflip, 2 workers", builtin, 2),
                                           ("pad_crop_flip written in the language (stdlib/augment.tb), 2 workers", script, 2),
                                           ("the same on the session's thread (workers: 0)", script, 0)] {
            _ = try i.run("epoch(\(transform), \(workers))", name: "warm-up")
            let t = try timed { try i.run("epoch(\(transform), \(workers))", name: "epoch") }
            print(String(format: "%@: %9.0f images/s", name, Double(images) / t))
        }
    }
}

/// A session with the bindings and the stdlib, printing nothing.
func benchSession() -> Interpreter {
    let i = Interpreter(searchPath: stdlibPaths())
    i.builtinModules = Assets.stdlib
    i.output = { _ in }
    i.define("quick", .bool(false))
    Bindings.register(into: i)
    return i
}

/// Seconds `body` takes.
func timed(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}
