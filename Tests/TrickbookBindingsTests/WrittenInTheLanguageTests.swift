import Foundation
import Testing
import TrickbookBindings
@testable import TrickbookScript

/// Layers, models and tricks written in the language, each checked against the built-in it mirrors.
@Suite struct WrittenInTheLanguageTests {
    /// A ResNet basic block with the ResNet-D shortcut, written as a module, computes bitwise what
    /// the built-in block computes on the same weights, in training and in evaluation; its names,
    /// summary, weight-decay groups and zero-γ follow the built-in rules.
    @Test func basicBlockAndResNetDShortcut() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-block-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = try printed("""
        fn shortcut_d(cin, cout, stride) {
          return sequential([avg_pool2d(stride, ceil_mode: true, count_include_pad: false), conv2d(cin, cout, 1), batch_norm(cout)])
        }
        fn basic_block(cin, cout, stride) {
          return module("BasicBlock", {
            "conv1": conv2d(cin, cout, 3, stride: stride, padding: 1), "bn1": batch_norm(cout),
            "conv2": conv2d(cout, cout, 3, padding: 1), "bn2": batch_norm(cout, zero_gamma: true),
            "downsample": shortcut_d(cin, cout, stride),
          }, fn(m, x) {
            let y = m.bn2(m.conv2(m.bn1(m.conv1(x)).relu()))
            return (y + m.downsample(x)).relu()
          })
        }
        let net = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, zero_gamma: true, seed: 1)
        let builtin = net.module("layer2.0")
        let mine = basic_block(8, 16, 2)
        print(mine.zero_gamma_layers, builtin.zero_gamma_layers)
        builtin.save("\(path)")
        print(mine.load("\(path)"))
        let x = randn([4, 8, 14, 14], generator: generator(2))
        for mode in ["train", "eval"] {
          if mode == "train" { mine.train(); builtin.train() } else { mine.eval(); builtin.eval() }
          # γ of bn2 moves off zero so that the whole block is exercised.
          no_grad(fn() { for w in [mine.bn2.weight, builtin.bn2.weight] { w[:] = 0.5 } })
          print(mode, mine(x).same_bits(builtin(x)))
        }
        print(mine.parameters().keys() == builtin.parameters().keys())
        print(sgd(mine, 0.1, no_bias_decay: true).groups() == sgd(builtin, 0.1, no_bias_decay: true).groups())
        print(mine.summary(input: [8, 14, 14]).split("\\n")[0])
        """)
        #expect(lines.count == 7, "\(lines)")
        #expect(lines.first == "[\"bn2\"] [\"bn2\"]")
        #expect(lines.dropFirst().first == "loaded 18 tensors, 0 missing, 0 unexpected")
        #expect(Array(lines.dropFirst(2).prefix(4)) == ["train true", "eval true", "true", "true"], "\(lines)")
        #expect(lines.last == "BasicBlock, input [8, 14, 14]", "\(lines)")
    }

    /// Label smoothing, mixup, cosine with warmup and random erasing written in the language give
    /// what the built-ins give on the same seeds.
    @Test func tricksEqualTheBuiltins() throws {
        let lines = try printed("""
        fn my_smooth(labels, k, eps) {
          let q = one_hot(labels, k)
          return q * (1 - eps) + (1 - q) * (eps / (k - 1))
        }
        fn my_smoothed_loss(logits, targets) {
          return -(log_softmax(logits, axis: 1) * my_smooth(targets, 10, 0.1)).sum(axis: 1).mean()
        }
        let labels = [3, 1, 4, 1, 5]
        let z = randn([5, 10], generator: generator(1))
        print(allclose(my_smooth(labels, 10, 0.1), smooth_targets(labels, 10, 0.1), atol: 0))
        print(allclose(my_smoothed_loss(z, labels), cross_entropy(smoothing: 0.1)(z, labels), atol: 1e-7))

        fn my_mixup(batch, classes, alpha, seed) {
          let g = generator(seed)
          let lam = g.beta(alpha, alpha)
          let perm = g.permutation(batch.size)
          let x = batch.images
          let y = one_hot(batch.labels, classes)
          return mixed_batch(x * lam + x.index_select(0, perm) * (1 - lam), y * lam + y.index_select(0, perm) * (1 - lam), lambda: lam)
        }
        let batch = next(loader(fashion_mnist("train", limit: 16), 16))
        let mine = my_mixup(batch, 10, 0.4, 7)
        let theirs = mixup(batch, 10, alpha: 0.4, seed: 7)
        print(mine.lambda == theirs.lambda, allclose(mine.images, theirs.images, atol: 1e-4), allclose(mine.targets, theirs.targets, atol: 1e-6))

        fn my_lr(t) {
          let m = 5
          if t < m { return 0.4 * (t + 1) / m }
          return 0.5 * (1 + cos(pi * min(t - m, 20) / 20)) * 0.4
        }
        let theirs_lr = warmup(cosine(0.4, 20), 5).values(30)
        var close = true
        for t in range(30) { if abs(my_lr(t) - theirs_lr[t]) > 1e-6 { close = false } }
        print(close, abs(warmup(my_lr, 3).at(0) - my_lr(0) / 3) < 1e-8)

        fn my_erasing(image, g) {
          if g.uniform() >= 0.5 { return image }
          let height = image.shape[1]
          let width = image.shape[2]
          let area = height * width
          for i in range(10) {
            let target = area * g.uniform(0.02, 0.33)
            let ar = exp(g.uniform(log(0.3), log(3.3)))
            let h = floor(sqrt(target * ar) + 0.5)
            let w = floor(sqrt(target / ar) + 0.5)
            if h > 0 and w > 0 and h < height and w < width {
              let y0 = g.int(height - h + 1)
              let x0 = g.int(width - w + 1)
              let out = image.clone()
              out[:, y0:y0 + h, x0:x0 + w] = 0
              return out
            }
          }
          return image
        }
        let data = fashion_mnist("train", limit: 64)
        var same = true
        let a = loader(data, 16, transform: my_erasing, seed: 3)
        let b = loader(data, 16, transform: random_erasing(p: 0.5), seed: 3)
        for k in range(4) { if next(a).images.tolist() != next(b).images.tolist() { same = false } }
        print(same)
        """)
        #expect(lines == ["true", "true", "true true true", "true true", "true"], "\(lines)")
    }

    /// stdlib/augment.tb's pad-crop-and-flip, written in the language, gives the built-ins'
    /// batches (it draws the same numbers in the same order).
    @Test func padCropFlipEqualsTheBuiltins() throws {
        let lines = try printed("""
        import "augment"
        let data = fashion_mnist("train", limit: 96)
        let a = loader(data, 32, shuffle: true, transform: pad_crop_flip(28, padding: 2), workers: 2, seed: 5)
        let b = loader(data, 32, shuffle: true, transform: compose([pad_crop(28, padding: 2), hflip()]), workers: 2, seed: 5)
        var same = true
        for k in range(3) { if next(a).images.tolist() != next(b).images.tolist() { same = false } }
        print(same)
        """)
        #expect(lines == ["true"])
    }

    /// A model trains with a script loss and a script schedule exactly as with the built-ins.
    @Test func scriptLossAndScheduleTrain() throws {
        let lines = try printed("""
        fn ce(logits, labels) { return -(log_softmax(logits, axis: 1) * one_hot(labels, 10)).sum(axis: 1).mean() }
        fn run(loss, lr) {
          let model = resnet(20, in_channels: 1, classes: 10, width: 8, seed: 2)
          let opt = sgd(model, lr, momentum: 0.9)
          let batches = loader(fashion_mnist("train", limit: 64), 16, shuffle: true, seed: 1)
          var out = []
          for i in range(4) { out.append(train_step(model, next(batches), opt, loss).loss) }
          return out
        }
        let builtin = run(cross_entropy(), cosine(0.1, 4))
        let mine = run(ce, fn(t) => 0.5 * (1 + cos(pi * t / 4)) * 0.1)
        var close = true
        for k in range(4) { if abs(builtin[k] - mine[k]) > 1e-5 { close = false } }
        print(close, builtin[0] > builtin[-1])
        """)
        #expect(lines == ["true true"], "\(lines)")
    }

    @Test(arguments: [
        ("module(\"Bad\", {}, fn(m, x) => 3)(zeros([1, 2]))", "the forward of Bad (fn(m, x)) returned int, not a tensor"),
        ("next(loader(fashion_mnist(\"train\", limit: 4), 2, transform: fn(im, g) => im[0]))",
         "the transform fn(im, g) returned a tensor of shape [28, 28], not an image [C, H, W]"),
        ("train_step(model, next(loader(fashion_mnist(\"train\", limit: 4), 2)), sgd(model, 0.1), fn(z, y) => z)",
         "the loss fn(z, y) returned a tensor of shape [2, 10], not a one-element tensor"),
        ("sgd(model, fn(t) => \"fast\")", "the schedule fn(t) gave \"fast\" at iteration 0, not a finite rate >= 0"),
        ("module(\"Bad\", {\"a.b\": relu()}, fn(m, x) => x)", "has the key \"a.b\": names are non-empty strings without dots"),
        ("module(\"Bad\", {\"w\": 3}, fn(m, x) => x)", "'w' must be a module, a tensor (a parameter) or buffer(t), got int"),
        ("sequential([relu(), 5])", "argument 'layers' item 1 must be a layer or model, got int"),
    ])
    func badScriptObjectsAreClearErrors(source: String, message: String) throws {
        let (i, _) = session()
        try i.run("let model = resnet(20, in_channels: 1, classes: 10, width: 8)", name: "setup")
        try expectError(i, source, message)
        try i.run("let ok = model(zeros([1, 1, 28, 28])).shape", name: "after")
        #expect(i.global("ok").map { $0.repr } == "[1, 10]")
    }
}
