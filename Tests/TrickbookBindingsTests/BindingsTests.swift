import Foundation
import Testing
import TrickbookBindings
@testable import TrickbookScript

let stdlib = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("stdlib").path

final class Lines: @unchecked Sendable { var all: [String] = [] }

func session(seed: Int = 0) -> (Interpreter, Lines) {
    let i = Interpreter(searchPath: [stdlib])
    let out = Lines()
    i.output = { out.all.append($0) }
    i.define("quick", .bool(true))
    i.define("seed", .int(seed))
    Bindings.register(into: i, seed: UInt64(seed))
    return (i, out)
}

/// Runs `source` (a cell named "cell") and expects it to fail with `message` in its report, at a
/// location in the cell.
func expectError(_ i: Interpreter, _ source: String, _ message: String) throws {
    do {
        try i.run(source, name: "cell")
        Issue.record("\(source) did not fail")
    } catch let e as ScriptError {
        #expect(e.report.contains(message), "\(e.report)")
        #expect(e.headline.hasPrefix("cell:"), "\(e.headline)")
    }
}

/// The lines that start a test of training on Fashion-MNIST: the stdlib's loop, `limit` test
/// images as `data`, their normalization as `plain`, and a ResNet-20-D of width 4 as `m`.
func smallTrainingSetup(limit: Int) -> String {
    """
    import "train"
    let data = fashion_mnist("test", limit: \(limit))
    let plain = normalize(mean: [72.94], std: [90.02])
    let m = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 4, seed: 1)

    """
}

/// Runs `source` in a new session and returns what it printed.
func printed(_ source: String, seed: Int = 0) throws -> [String] {
    let (i, out) = session(seed: seed)
    try i.run(source, name: "t")
    return out.all
}

@Suite struct BindingsTests {
    /// Every builtin row parses and its help shows the signature and a one-line doc.
    @Test func everyBuiltinHasHelp() throws {
        let (i, _) = session()
        #expect(Interpreter.registrationErrors.isEmpty, "\(Interpreter.registrationErrors)")
        #expect(i.builtins.count > 60)
        for b in i.builtins {
            let h = i.help(for: .builtin(b))
            #expect(h.hasPrefix(b.name + "(") && h.components(separatedBy: "\n").count >= 2 && !b.doc.isEmpty, "\(b.name)")
        }
    }

    @Test func tensorsThroughTheLanguage() throws {
        let (i, out) = session()
        try i.run("""
        let a = tensor([[1, 2], [3, 4]])
        let b = a @ a + 1
        print(b.shape, b.tolist(), (a * 2).sum().item, a[1].tolist())
        a.requires_grad = true
        let loss = (a * a).sum()
        loss.backward()
        print(a.grad.tolist())
        """, name: "t")
        #expect(out.all == ["[2, 2] [[8.0, 11.0], [16.0, 23.0]] 20.0 [3.0, 4.0]", "[[2.0, 4.0], [6.0, 8.0]]"])
    }

    @Test func uniformArgumentErrors() throws {
        let (i, _) = session()
        for (source, message) in [("resnet(51)", "resnet(): argument 'depth' must be one of 18, 34, 50, 101, 152, 20, 32, 44, 56, 110, got 51"),
                                  ("resnet(20, variant: \"e\")", "resnet(): argument 'variant' must be one of \"a\", \"b\", \"c\", \"d\", got \"e\""),
                                  ("cross_entropy(form: \"odd\")", "cross_entropy(): argument 'form' must be one of \"paper\", \"uniform\""),
                                  ("sgd(1, 0.1)", "sgd(): argument 'model' must be a model, got int")] {
            do { try i.run(source, name: "t"); Issue.record("\(source) did not fail") } catch let e as ScriptError {
                #expect(e.headline.contains(message), "\(e.headline)")
            }
        }
    }

    /// The stdlib's fit loop trains a small model through the bindings, and every trick's
    /// inspector answers.
    @Test func fitThroughTheStdlib() throws {
        let (i, out) = session()
        try i.run("""
        import "train"
        let train = fashion_mnist("train", limit: 512)
        let test = fashion_mnist("test", limit: 256)
        let plain = normalize(mean: [72.94], std: [90.02])
        let model = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, zero_gamma: true)
        print(len(model.zero_gamma_layers))
        let lr = warmup(cosine(linear_scaling(0.2, 64), 12), 4)
        let opt = sgd(model, lr, no_bias_decay: true)
        let history = fit(model, loader(train, 64, shuffle: true, transform: compose([pad_crop(28, padding: 2), plain])), opt,
                          cross_entropy(smoothing: 0.1), epochs: 2, eval: test, eval_transform: plain)
        print(len(history), history[-1].test_top1 > 0.2, opt.step_count)
        print(lr.at(0), lr.at(3))
        print(len(walk(train, 0, compose([pad_crop(28), hflip()]))))
        let probe = loader(train, 64, shuffle: true)
        for b in probe { }
        print("precise", precise_bn(model, probe, count: 3), probe.epoch)
        """, name: "t")
        #expect(out.all.first == "9")  // zero-gamma: the last BN of each of the 9 blocks
        #expect(out.all.contains("2 true 16"))  // 2 epochs of 8 steps, above chance
        #expect(out.all.contains("0.0125 0.05"))  // warmup: 0.05 · 1/4 at the first step
        #expect(out.all.contains("2"))
        // Precise BN borrows an epoch's batches without moving the loader on.
        #expect(out.all.contains("precise 3 1"))
    }

    /// A run stopped after its first epoch and resumed from the checkpoint, in a new model and
    /// optimizer, ends exactly where the unbroken run does.
    @Test func resumedFitEqualsUnbroken() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-resume-\(getpid()).ckpt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (i, out) = session()
        try i.run("""
        import "train"
        let train = fashion_mnist("train", limit: 256)
        let plain = compose([pad_crop(28, padding: 2), normalize(mean: [72.94], std: [90.02])])
        fn run(model_seed, epochs, start, checkpoint) {
          let model = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, zero_gamma: true, seed: model_seed)
          let batches = loader(train, 64, shuffle: true, transform: plain, seed: 3)
          let opt = sgd(model, warmup(cosine(0.1, 6), 2), no_bias_decay: true, ema: 0.9)
          var first = start
          if start > 1 { first = load_checkpoint(checkpoint, opt, batches) + 1 }
          let h = fit(model, batches, opt, cross_entropy(smoothing: 0.1), epochs: epochs, start: first, checkpoint: checkpoint)
          return [h[-1].train_loss, opt.step_count, predict(model, batches_first(train)).tolist()[0]]
        }
        fn batches_first(d) {
          for b in loader(d, 8) { return b.images }
        }
        let whole = run(1, 2, 1, nil)
        run(1, 1, 1, "\(path)")
        let resumed = run(7, 2, 2, "\(path)")
        print(whole == resumed, whole[1], resumed[1])
        """, name: "t")
        #expect(out.all.last == "true 8 8", "\(out.all.suffix(3))")
    }

    /// The names the help examples use, as a reader of the notebooks would have them.
    static let examplePrelude = """
    let x = tensor([[1.0, -2.0], [3.0, 4.0]])
    let w = randn([3]); w.requires_grad = true
    let model = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8)
    model.save("model.safetensors")
    let teacher = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, seed: 1)
    let train = fashion_mnist("train", limit: 64)
    let test = fashion_mnist("test", limit: 32)
    show_batch(test, count: 1, to: "pngs/coat/0.png"); show_batch(test, count: 1, to: "pngs/shirt/0.png")
    let augment = compose([pad_crop(28, padding: 2), hflip(), normalize(mean: [72.94], std: [90.02])])
    let batches = loader(train, 16, shuffle: true, transform: augment)
    var batch = nil
    for b in batches { batch = b }
    let lr = warmup(cosine(0.1, 90), 10)
    let opt = sgd(model, lr, no_bias_decay: true)
    let loss = cross_entropy(smoothing: 0.1)
    let kd = cross_entropy(smoothing: 0.1, teacher: teacher, temperature: 4.0)
    let p = progress(4, "demo")
    save_checkpoint("run.ckpt", opt, batches)
    """
    /// Reset before each example, so that one example's mutation does not reach the next.
    static let exampleReset = "var xs = [3, 1, 2]; var m = {\"lr\": 0.1, \"wd\": 1e-4}"

    /// Every builtin and every method has a doc and an example, and every example runs (files
    /// they write go to a temporary folder).
    @Test func everyExampleRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-examples-\(getpid())").path
        for sub in ["pngs/coat", "pngs/shirt", "cifar"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        // Four CIFAR-10 records: a label byte, then 3×32×32 pixel bytes.
        let records = (0..<4).flatMap { r in [UInt8(r)] + [UInt8](repeating: UInt8(r * 60), count: 3072) }
        try Data(records).write(to: URL(fileURLWithPath: dir + "/cifar/data_batch_1.bin"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Relative file names in the examples, made absolute inside `dir`.
        let file = try Regex(#""((?:pngs|cifar|[A-Za-z0-9_-]+\.(?:png|svg|md|safetensors|ckpt|json))[A-Za-z0-9_/.-]*)""#)
        func local(_ source: String) -> String {
            source.replacing(file) { "\"\(dir)/\($0.output[1].substring ?? "")\"" }
        }
        Builtin.recordingReads = true
        defer { Builtin.recordingReads = false }
        let (i, _) = session()
        try i.run(local(Self.examplePrelude), name: "prelude")
        let rows = i.documented
        #expect(rows.count >= 120, "\(rows.count) documented builtins and methods")
        for (name, b) in rows {
            #expect(!b.doc.isEmpty, "\(name) has no doc")
            guard let example = b.example else { Issue.record("\(name) has no example"); continue }
            #expect(i.help(for: .builtin(b)).contains("example: " + example))
            try i.run(Self.exampleReset, name: "reset")
            do { try i.run(local(example), name: "example of \(name)") } catch {
                Issue.record("the example of \(name) fails: \(example)\n\(error)")
            }
        }
        // Every parameter of every binding's signature is read by its implementation (the core
        // library reads by position and is left out).
        let core = Set(Interpreter().documented.map(\.0))
        for (name, b) in rows where !core.contains(name) {
            let unread = Set(b.params.map(\.name)).subtracting(b.namesRead)
            #expect(unread.isEmpty, "\(name): the implementation never read \(unread.sorted()) in the examples")
        }
    }
}
