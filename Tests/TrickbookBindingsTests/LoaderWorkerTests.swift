import Foundation
import Testing
import TrickbookBindings
@testable import TrickbookScript

/// Transforms written in the language on the loader's worker threads: copied to sessions of
/// their own, with what they use; the same batches as on the session's thread; errors, the step
/// limit and the interrupt as there; and the session's thread when a transform cannot be copied.
@Suite struct LoaderWorkerTests {
    /// A transform that uses a captured list and number, a global function, a global constant and
    /// its generator gives, on 2 workers, the batches it gives on the session's thread.
    @Test func workersGiveTheSessionsBatches() throws {
        let lines = try printed("""
        let data = fashion_mnist("train", limit: 96)
        let scale = 0.5
        fn shift(x, k) => x + k
        fn make(offsets) {
          let n = len(offsets)
          return fn(image, rng) {
            let k = offsets[rng.int(n)]
            return shift(image * scale, k)
          }
        }
        let t = make([1, 2, 3])
        let a = loader(data, 32, shuffle: true, transform: t, workers: 2, seed: 5)
        let b = loader(data, 32, shuffle: true, transform: t, workers: 0, seed: 5)
        print(a)
        var same = true
        for k in range(3) { if next(a).images.tolist() != next(b).images.tolist() { same = false } }
        print(same)
        """)
        #expect(lines == ["loader: 96 images in 3 batches of 32; the transform fn(image, rng) runs on 2 workers", "true"], "\(lines)")
    }

    /// A transform that uses a model (state the workers would share) stays on the session's
    /// thread, says why, and still gives its batches.
    @Test func aTransformThatCannotBeCopiedStaysOnTheSessionsThread() throws {
        let lines = try printed("""
        let data = fashion_mnist("train", limit: 8)
        let m = relu()
        fn t(image, rng) => m(image - 100.0)
        let a = loader(data, 4, transform: t, workers: 2)
        print(a)
        print(next(a).images.shape)
        """)
        #expect(lines == [
            "loader: 8 images in 2 batches of 4; the transform cannot run on loader workers: it uses 'm' (a model), which the workers would share with the session (give it as a number, string or list of those, or use workers = 0)",
            "[4, 1, 28, 28]",
        ], "\(lines)")
    }

    /// An error raised in a worker's copy points at the user's line and column, as on the
    /// session's thread.
    @Test func anErrorInAWorkerPointsIntoTheUsersFile() throws {
        let (i, _) = session()
        try i.run("""
        let data = fashion_mnist("train", limit: 8)
        fn t(image, rng) {
          let y = image * 2.0
          return y + missing_name
        }
        """, name: "cell")
        var reports: [String] = []
        for workers in [2, 0] {
            do {
                try i.run("next(loader(data, 4, transform: t, workers: \(workers)))", name: "use")
                Issue.record("no error with \(workers) workers")
            } catch let e as ScriptError {
                reports.append(e.headline)
            }
        }
        #expect(reports.count == 2 && reports[0] == reports[1], "\(reports)")
        #expect(reports.first?.hasPrefix("cell:4:14: error: unknown name 'missing_name'") == true, "\(reports)")
    }

    /// A transform that never ends on a worker: the session's step limit stops it, and so does
    /// the session's interrupt; neither hangs.
    @Test func aWorkerStopsForTheStepLimitAndTheInterrupt() throws {
        let (i, _) = session()
        try i.run("""
        let data = fashion_mnist("train", limit: 8)
        fn forever(image, rng) {
          var n = 0
          while true { n += 1 }
          return image
        }
        """, name: "cell")
        i.stepLimit = 100_000
        #expect(throws: StepLimitExceeded.self) { try i.run("next(loader(data, 4, transform: forever, workers: 2))", name: "limit") }
        i.stepLimit = nil
        let flag = i.interrupt
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { flag.set() }
        #expect(throws: ScriptInterrupted.self) { try i.run("next(loader(data, 4, transform: forever, workers: 2))", name: "interrupt") }
        i.interrupt.clear()
    }
}
