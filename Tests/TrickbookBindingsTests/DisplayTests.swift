import Foundation
import Testing
import TrickbookBindings
import TrickbookDisplay
@testable import TrickbookScript

/// Charts that say what they show: titled axes, epochs from 1, the learning rate kept off the loss
/// axis, log axes, overlays of paired runs, and histograms of shares.
@Suite struct DisplayTests {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-display-\(getpid())").path

    func svg(_ source: String, file: String = "c.svg") throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let (i, _) = session()
        // Each call its own file: the suite's tests run in parallel.
        let path = "\(dir)/\(UUID().uuidString)-\(file)"
        try i.run(source.replacingOccurrences(of: "OUT", with: "\"\(path)\""), name: "t")
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test func axesAreTitled() throws {
        let lr = try svg("plot(cosine(0.1, 10), to: OUT)")
        #expect(lr.contains(">step</text>") && lr.contains("learning rate</text>"))
        let mine = try svg("plot([1, 2, 3], to: OUT, x: \"round\", y: \"score\")")
        #expect(mine.contains(">round</text>") && mine.contains(">score</text>"))
    }

    /// A history is drawn by its epoch numbers (from 1), without its learning rate unless asked.
    @Test func historiesByEpochWithoutTheRate() throws {
        let h = "[{\"epoch\": 1, \"train_loss\": 2.0, \"lr\": 0.1}, {\"epoch\": 2, \"train_loss\": 1.0, \"lr\": 0.05}]"
        let s = try svg("plot(\(h), to: OUT)")
        #expect(s.contains(">train_loss</text>") && !s.contains(">lr</text>") && s.contains(">epoch</text>"))
        // The x axis runs from epoch 1 to 2: its ticks are 1 and 2, never 0.
        #expect(s.contains(">1</text>") && s.contains(">2</text>") && !s.contains("text-anchor=\"middle\">0</text>"))
        let rate = try svg("plot(\(h), fields: [\"lr\"], to: OUT)")
        #expect(rate.contains(">lr</text>") && !rate.contains(">train_loss</text>"))
    }

    /// Paired runs on one chart: a map of names to histories, one field each.
    @Test func pairedRunsOverlay() throws {
        let s = try svg("""
            let a = [{"epoch": 1, "test_top1": 0.5}, {"epoch": 2, "test_top1": 0.7}]
            let b = [{"epoch": 1, "test_top1": 0.6}, {"epoch": 2, "test_top1": 0.65}]
            plot({"step": a, "cosine": b}, fields: ["test_top1"], to: OUT)
            """)
        #expect(s.contains(">step</text>") && s.contains(">cosine</text>"))
        #expect(s.components(separatedBy: "<polyline").count == 3)
    }

    /// On a log axis the ticks are powers of ten and values that are not positive are left out.
    @Test func logAxis() throws {
        let s = try svg("plot([65536, 32768, 0, 1024], log: true, y: \"loss scale\", to: OUT)")
        #expect(s.contains("loss scale (log scale)") && s.contains(">1000</text>") && s.contains(">1e5</text>"))
        let points = s.components(separatedBy: "points=\"")[1].prefix { $0 != "\"" }.split(separator: " ")
        #expect(points.count == 3)
    }

    /// A histogram's bars are shares of each list: equal lists of different sizes draw alike.
    @Test func histogramShares() throws {
        let (edges, shares) = Chart.histogram([Series("a", [0, 0, 1, 1]), Series("b", [0, 1])], bins: 2)
        let half: [Double] = [0.5, 0.5], expectedEdges: [Double] = [0, 0.5, 1]
        #expect(edges == expectedEdges && shares == [half, half])
        // Values outside a given range count at its ends.
        let ends: [Double] = [2.0 / 3, 1.0 / 3]
        #expect(Chart.histogram([Series("c", [-5, 0.2, 9])], bins: 2, range: 0...1).shares == [ends])
        let s = try svg("hist({\"one-hot\": [1, 2, 3], \"smoothed\": [1, 1, 2]}, bins: 3, x: \"gap\", to: OUT)")
        #expect(s.contains(">gap</text>") && s.contains("share of values") && s.contains(">smoothed</text>"))
    }
}

/// Training-mode statistics of a model's blocks: a fresh batch norm rescales its input to unit
/// variance, so without zero-gamma each block adds variance; the running statistics are left
/// as they were.
@Test func activationsInTrainingMode() throws {
    let (i, out) = session()
    try i.run("""
        let m = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, seed: 1)
        let z = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, zero_gamma: true, seed: 1)
        let x = randn([16, 1, 28, 28], generator: generator(3))
        let before = m.buffers()["layer1.0.bn1.running_var"].clone()
        let a = activations(m, x, training: true)
        let b = activations(z, x, training: true)
        print(a[1].std > a[0].std * 1.05, a[2].std > a[1].std * 1.05, abs(b[2].std - b[0].std) < 1e-5)
        print(allclose(before, m.buffers()["layer1.0.bn1.running_var"]), m.training)
        """, name: "t")
    #expect(out.all == ["true true true", "true true"])
}

/// mixup's partners: the image each one was mixed with.
@Test func mixupPartners() throws {
    let (i, out) = session()
    try i.run("""
        let data = fashion_mnist("test", limit: 8)
        let b = next(loader(data, 8))
        let m = mixup(b, 10, alpha: 0.2, seed: 3)
        let j = m.partners[0]
        let expected = b.images[0:1] * m.lambda + b.images[j:j + 1] * (1 - m.lambda)
        print(len(m.partners), allclose(m.images[0:1], expected, atol: 1e-4))
        """, name: "t")
    #expect(out.all == ["8 true"])
}

/// The learning-rate advisor: its range test leaves the model as it was, and the rate it proposes,
/// with its warmup and weight decay, trains a small model (the loss falls well below ln 10).
@Test func advisedRateTrains() throws {
    let (i, out) = session()
    try i.run(smallTrainingSetup(limit: 512) + """
        let before = m.state_dict()
        let a = advise(m, data, batch: 64, transform: plain, steps: 60)
        var same = true
        let after = m.state_dict()
        for k in before.keys() { if not allclose(before[k], after[k]) { same = false } }
        let batches = loader(data, 64, shuffle: true, transform: plain, seed: 2)
        let warm = a.warmup_epochs * len(batches)
        let total = 4 * len(batches)
        let lr = warm > 0 ? warmup(cosine(a.peak, total - warm), warm) : cosine(a.peak, total)
        let h = fit(m, batches, sgd(m, lr, weight_decay: a.weight_decay, no_bias_decay: true), cross_entropy(), epochs: 4)
        print(same, a.peak > 0 and a.peak < 10, a.warmup_epochs >= 0 and a.warmup_epochs <= 5, a.weight_decay, len(a.test))
        print(h[-1].train_loss < h[0].train_loss - 0.3, a.why.starts_with("at batch 64 the smoothed loss fell fastest"))
        """, name: "t")
    #expect(out.all.suffix(2) == ["true true true 0.0005 60", "true true"], "\(out.all.suffix(4))")
}
