import Foundation
import Testing
import TrickbookBindings
@testable import TrickbookScript

/// Test-time augmentation: the views are the image, its mirror and four shifts with the edge
/// repeated, checked against arrays worked out by hand; and `evaluate(..., tta: true)` classifies
/// by the mean softmax over them, checked against that mean computed here.
@Suite struct TTATests {
    @Test func viewsByHand() throws {
        let (i, out) = session()
        try i.run("""
            import "train"
            let x = tensor([[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]])
            let v = tta_views(x, shift: 1)
            print(len(v))
            for t in v { print(t[0, 0].tolist()) }
            """, name: "t")
        #expect(out.all == [
            "6",
            "[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]",  // the image
            "[[3.0, 2.0, 1.0], [6.0, 5.0, 4.0], [9.0, 8.0, 7.0]]",  // its mirror
            "[[1.0, 1.0, 2.0], [4.0, 4.0, 5.0], [7.0, 7.0, 8.0]]",  // moved right, the left edge repeated
            "[[2.0, 3.0, 3.0], [5.0, 6.0, 6.0], [8.0, 9.0, 9.0]]",  // moved left
            "[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]",  // moved down
            "[[4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [7.0, 8.0, 9.0]]",  // moved up
        ])
    }

    @Test func evaluateAveragesTheViews() throws {
        let (i, out) = session()
        try i.run(smallTrainingSetup(limit: 64) + """
            let r = evaluate(m, data, transform: plain, tta: true)
            # By hand: the mean softmax over the six views, its argmax against the labels.
            let b = next(loader(data, 64, transform: plain))
            var p = zeros([64, 10])
            for v in tta_views(b.images) { p = p + predict(m, v).softmax(axis: 1) }
            let guess = (p / 6).argmax(axis: 1).tolist()
            var right = 0
            for k, label in enumerate(b.labels) { if guess[k] == label { right += 1 } }
            print(r.top1 == right / 64, r.top5 >= r.top1, r.loss > 0)
            """, name: "t")
        #expect(out.all == ["true true true"])
    }
}

/// A shift that does not fit the images is refused with a clear message.
@Test func ttaShiftIsChecked() throws {
    let (i, _) = session()
    try i.run("import \"train\"", name: "setup")
    // Raised in the stdlib, with the cell's call in the trace.
    do {
        try i.run("tta_views(zeros([1, 1, 3, 3]), shift: 3)", name: "cell")
        Issue.record("the shift was accepted")
    } catch let e as ScriptError {
        #expect(e.report.contains("tta_views: shift must be from 1 to 2 for images of 3x3, got 3") && e.report.contains("cell:1:1"), "\(e.report)")
    }
}

/// The average of the weights (sgd(..., ema: d)): after each step every average moves to
/// d × average + (1 - d) × weight, from the initial weights; with_ema puts the averages in the
/// model for its call and the trained weights back after it. Checked against the formula
/// unrolled by hand over two steps.
@Suite struct EMATests {
    @Test func averageByHand() throws {
        let (i, out) = session()
        try i.run("""
            let train = fashion_mnist("train", limit: 16)
            let model = resnet(20, variant: "d", in_channels: 1, classes: 10, width: 8, seed: 2)
            let opt = sgd(model, 0.5, ema: 0.75)
            fn copies() {
              var m = {}
              for k, v in model.parameters() { m[k] = v.clone() }
              return m
            }
            let w0 = copies()
            var batch = nil
            for b in loader(train, 8, transform: normalize(mean: [72.94], std: [90.02])) { batch = b }
            train_step(model, batch, opt, cross_entropy())
            let w1 = copies()
            train_step(model, batch, opt, cross_entropy())
            let w2 = copies()
            # d = 0.75: a1 = 0.75 w0 + 0.25 w1; a2 = 0.75 a1 + 0.25 w2
            var worst = 0.0
            var moved = 0.0
            with_ema(opt, fn() {
              for k, v in model.parameters() {
                let by_hand = (w0[k] * 0.5625) + (w1[k] * 0.1875) + (w2[k] * 0.25)
                worst = max(worst, (v - by_hand).abs().max().item)
                moved = max(moved, (v - w2[k]).abs().max().item)
              }
            })
            var back = 0.0
            for k, v in model.parameters() { back = max(back, (v - w2[k]).abs().max().item) }
            print(worst < 1e-6, moved > 1e-3, back == 0.0)
            """, name: "t")
        #expect(out.all.last == "true true true", "\(out.all)")
    }
}
