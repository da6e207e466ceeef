import Testing
import TrickbookBindings
@testable import TrickbookScript

/// The training step opened up: a model called on a batch, a loss on its logits, backward, the
/// optimizer's pieces, and a loader stepped by hand.
@Suite struct StepTests {
    /// Every random draw a call does not seed follows the run's seed: two seeds give different
    /// initial weights, data order and mixing; the same seed gives the same bits.
    @Test func oneSeedFixesARun() throws {
        let probe = """
        let model = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8)
        let train = fashion_mnist("train", limit: 64)
        let batches = loader(train, 16, shuffle: true, transform: pad_crop(28, padding: 2))
        let b = next(batches)
        print(model.param("fc.weight").sum().item, model.param("conv1.0.weight").tolist()[0][0][0])
        print(b.labels, b.images.sum().item)
        print(mixup(b, 10).lambda, randn([3]).tolist())
        """
        let a = try printed(probe, seed: 1), again = try printed(probe, seed: 1), other = try printed(probe, seed: 2)
        #expect(a == again)
        #expect(a.count == 3 && other.count == 3)
        for (x, y) in zip(a, other) { #expect(x != y, "seed 1 and 2 agree on \(x)") }
        // A call that passes its own seed does not follow the run's.
        let own = "print(resnet(20, in_channels: 1, classes: 10, width: 8, seed: 5).param(\"fc.weight\").sum().item)"
        #expect(try printed(own, seed: 1) == printed(own, seed: 2))
    }

    /// zero_grad, forward, loss, backward and step written in the language give bitwise the
    /// weights, buffers and momentum of train_step after 20 steps: ResNet-20-D, label smoothing,
    /// the no-bias-decay groups, warmup and cosine.
    @Test func handWrittenStepEqualsTrainStep() throws {
        let lines = try printed("""
        let train = fashion_mnist("train", limit: 640)
        let augment = compose([pad_crop(28, padding: 2), hflip(), normalize(mean: [72.94], std: [90.02])])
        let loss = cross_entropy(smoothing: 0.1)
        fn setup() {
          let model = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, zero_gamma: true, seed: 3)
          let opt = sgd(model, warmup(cosine(0.2, 15), 5), weight_decay: 5e-4, no_bias_decay: true)
          return [model, opt, loader(train, 32, shuffle: true, transform: augment, seed: 4)]
        }
        let builtin = setup()
        for i in range(20) { train_step(builtin[0], next(builtin[2]), builtin[1], loss) }
        let hand = setup()
        let model = hand[0]
        let opt = hand[1]
        var losses = []
        for i in range(20) {
          let b = next(hand[2])
          opt.zero_grad()
          model.train()
          let l = loss(model(b.images), b.labels)
          l.backward()
          opt.step()
          losses.append(l.item)
        }
        fn same(a, b) {
          for name in a.keys() { if not a[name].same_bits(b[name]) { return name } }
          return "all"
        }
        print(same(builtin[0].parameters(), model.parameters()), same(builtin[0].buffers(), model.buffers()))
        print(same(builtin[1].momentum(), opt.momentum()), builtin[1].step_count, opt.step_count, opt.lr == builtin[1].lr)
        print(losses[-1] < losses[0], len(model.param("layer1.0.bn2.weight").grad.tolist()))
        """)
        #expect(lines == ["all all", "all 20 20 true", "true 8"], "\(lines)")
    }

    /// What a learner looks at between the pieces of a step.
    @Test func piecesOfAStep() throws {
        let lines = try printed("""
        let model = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, zero_gamma: true, seed: 1)
        let b = next(loader(fashion_mnist("train", limit: 32), 8))
        let z = model(b.images)
        print(z.shape, z.requires_grad, no_grad(fn() => model(b.images)).requires_grad)
        let loss = cross_entropy()
        let l = loss(z, b.labels)
        print(l.shape, l.item > 0, model.param("fc.weight").grad == nil)
        l.backward()
        let g = model.param("layer1.0.bn2.weight")
        print(g.tolist() == [0, 0, 0, 0, 0, 0, 0, 0], g.grad.abs().sum().item > 0)
        print(len(model.parameters()), len(model.buffers()) > 0, model.modules()["layer1.0"](model.modules()["act1"](randn([1, 8, 4, 4]))).shape)
        let opt = sgd(model, 0.1, no_bias_decay: true)
        print(opt.scheduled_lr, len(opt.momentum()))
        opt.step()
        print(len(opt.momentum()), opt.step_count, g.tolist() != [0, 0, 0, 0, 0, 0, 0, 0])
        opt.zero_grad()
        print(g.grad)
        """)
        #expect(lines == ["[8, 10] true false", "[] true true", "true true", "71 true [1, 8, 4, 4]",
                         "0.1 0", "71 1 true", "nil"], "\(lines)")
    }

    /// Bad input in the step: each a clear error naming what, and the session goes on.
    @Test(arguments: [
        ("model(zeros([2, 3, 28, 28]))", "resnet: input must be [N, 1, H, W], got [2, 3, 28, 28]"),
        ("loss(model(x), [1, 2, 3])", "loss(): 3 labels for logits [2, 10]"),
        ("loss(model(x), zeros([2, 7]))", "loss(): soft targets [2, 7] for logits [2, 10]"),
        ("loss(model(x), \"cat\")", "loss(): argument 'targets' must be labels"),
        ("zeros([3]).sum().backward()", "does not require gradients"),
        ("model.param(\"fc.wieght\")", "ResNet-20B has no parameter 'fc.wieght' (did you mean 'fc.weight'?)"),
        ("kd(model(x), [1, 2])", "argument 'inputs' is needed by a distillation loss"),
        ("sgd(model, 0.1, precision: \"bf16\").step()", "step(): this optimizer trains in bfloat16"),
        ("next(5)", "next(): argument 'iterator' cannot be stepped with next(), got int"),
        ("sgd(model, 0.1).step()", "step(): no parameter has a gradient; call backward() on a loss first"),
    ])
    func badStepsAreClearErrors(source: String, message: String) throws {
        let (i, _) = session()
        try i.run("""
        let model = resnet(20, in_channels: 1, classes: 10, width: 8)
        let x = randn([2, 1, 28, 28])
        let loss = cross_entropy()
        let kd = cross_entropy(teacher: model)
        """, name: "setup")
        try expectError(i, source, message)
        // The session goes on.
        try i.run("let ok = model(x).shape", name: "after")
        #expect(i.global("ok").map { $0.repr } == "[2, 10]")
    }
}
