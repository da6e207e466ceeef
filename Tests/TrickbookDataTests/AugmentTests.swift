import Foundation
import Testing
@testable import TrickbookData
import TrickbookTensor

func ramp(_ c: Int, _ h: Int, _ w: Int) -> Image {
    Image(channels: c, height: h, width: w, pixels: (0..<(c * h * w)).map { Float($0 % 251) })
}

@Suite struct TransformTests {
    /// Over many draws: crop area within 8–100% and aspect within 3/4–4/3 (up to rounding to
    /// whole pixels), output at the asked size; the center-crop fallback when no try fits.
    @Test func randomResizedCropStaysInBounds() throws {
        let t = try RandomResizedCrop(32)
        let im = ramp(3, 100, 80)
        var areas: [Double] = [], aspects: [Double] = []
        for k in 0..<2000 {
            var log: [Sampled] = []
            let out = try t.apply(im, Generator(seed: UInt64(k)), &log)
            #expect(out.height == 32 && out.width == 32 && out.channels == 3)
            let v = Dictionary(uniqueKeysWithValues: log[0].values)
            guard v["center"] == nil, let a = v["area"], let r = v["aspect"] else { continue }
            areas.append(a)
            aspects.append(r)
        }
        #expect(areas.count > 1800)
        #expect(areas.allSatisfy { $0 >= 0.07 && $0 <= 1 })
        #expect(aspects.allSatisfy { $0 >= 0.7 && $0 <= 1.4 })
        #expect(areas.min()! < 0.15 && areas.max()! > 0.9)  // the whole range is used
        // log-uniform aspect: as many draws below 1 as above.
        let below = aspects.filter { $0 < 1 }.count
        #expect(abs(Double(below) / Double(aspects.count) - 0.5) < 0.1)  // tries that do not fit are redrawn, so not exactly ½
    }

    @Test func flipIsExactAndFair() throws {
        let im = ramp(2, 3, 5)
        var flips = 0
        for k in 0..<1000 {
            var log: [Sampled] = []
            let out = try HorizontalFlip().apply(im, Generator(seed: UInt64(k)), &log)
            if log[0].values[0].1 == 1 {
                flips += 1
                for c in 0..<2 { for y in 0..<3 { for x in 0..<5 { #expect(out[c, y, x] == im[c, y, 4 - x]) } } }
            } else {
                #expect(out.pixels == im.pixels)
            }
        }
        #expect(abs(flips - 500) < 60)
    }

    @Test func normalizationIsExact() throws {
        let im = Image(channels: 3, height: 1, width: 2, pixels: [123.68, 182.073, 116.779, 173.899, 103.939, 161.314])
        let out = try Normalize()(im, Generator(seed: 0))
        for (a, b) in zip(out.pixels, [Float](arrayLiteral: 0, 1, 0, 1, 0, 1)) { #expect(abs(a - b) < 1e-5) }
        let gray = try Normalize(mean: [10], std: [2])(Image(channels: 1, height: 1, width: 1, pixels: [14]), Generator(seed: 0))
        #expect(gray.pixels == [2])
    }

    @Test func hsvCoefficientsInRangeAndGrayIsBrightness() throws {
        let im = Image(channels: 3, height: 2, width: 2, pixels: [200, 10, 50, 90, 30, 180, 60, 20, 120, 40, 250, 5])
        for k in 0..<500 {
            var log: [Sampled] = []
            let out = try HSVJitter().apply(im, Generator(seed: UInt64(k)), &log)
            #expect(log[0].values.count == 3 && log[0].values.allSatisfy { $0.1 >= 0.6 && $0.1 <= 1.4 })
            #expect(out.pixels.allSatisfy { $0 >= -1e-3 && $0 <= 255.001 })
        }
        // Coefficients of 1 change nothing (up to the HSV round trip).
        let same = try HSVJitter(1, 1)(im, Generator(seed: 1))
        for (a, b) in zip(same.pixels, im.pixels) { #expect(abs(a - b) < 1e-3) }
        var log: [Sampled] = []
        let g = try HSVJitter().apply(Image(channels: 1, height: 1, width: 1, pixels: [100]), Generator(seed: 3), &log)
        #expect(log[0].values.count == 1 && abs(Double(g.pixels[0]) - 100 * log[0].values[0].1) < 1e-3)
    }

    @Test func pcaLightingShiftsByTheEigenbasis() throws {
        let l = PCALighting()
        var log: [Sampled] = []
        let im = Image(channels: 3, height: 1, width: 1, pixels: [100, 100, 100])
        let out = try l.apply(im, Generator(seed: 5), &log)
        let a = log[0].values.map { Float($0.1) }
        for r in 0..<3 {
            let expected = 100 + (0..<3).reduce(Float(0)) { $0 + PCALighting.imagenetEigenvectors[r][$1] * a[$1] * PCALighting.imagenetEigenvalues[$1] }
            #expect(abs(out.pixels[r] - expected) < 1e-3)
        }
        // Gray data: the standard deviation of its pixels.
        let d = MemoryDataset(channels: 1, height: 1, width: 2, bytes: [0, 10, 0, 10], labels: [0, 0], classNames: ["x"])
        #expect(try PCALighting.estimate(from: d).eigenvalues == [5])
    }

    @Test func erasingCutoutPadCropAndValidation() throws {
        let im = Image(channels: 1, height: 20, width: 20, fill: 9)
        let erased = try RandomErasing(p: 1)(im, Generator(seed: 2))
        let zeros = erased.pixels.filter { $0 == 0 }.count
        #expect(zeros >= Int(0.02 * 400) - 1 && zeros <= Int(0.33 * 400) + 20)
        var log: [Sampled] = []
        let cut = try Cutout(size: 8).apply(im, Generator(seed: 3), &log)
        let v = Dictionary(uniqueKeysWithValues: log[0].values)
        #expect(cut.pixels.filter { $0 == 0 }.count == Int(v["h"]! * v["w"]!))
        #expect(try PadCrop(28, padding: 2)(ramp(1, 28, 28), Generator(seed: 4)).height == 28)
        let val = try paperValidationPipeline()(ramp(3, 300, 400), Generator(seed: 0))
        #expect(val.height == 224 && val.width == 224)
        let train = try paperTrainPipeline()(ramp(3, 300, 400), Generator(seed: 0))
        #expect(train.height == 224 && train.channels == 3)
    }
}

@Suite struct MixingTests {
    func batch() throws -> (Tensor, [Int]) {
        // Image i is constant i + 1, so where each pixel came from is visible.
        let n = 6, px = 8 * 8
        return (try Tensor((0..<n).flatMap { i in [Float](repeating: Float(i + 1), count: px) }, shape: [n, 1, 8, 8]), [0, 1, 2, 0, 1, 2])
    }

    @Test func mixupIsAConvexCombination() throws {
        let (x, labels) = try batch()
        var lambdas: [Double] = []
        for k in 0..<200 {
            let m = try mixup(x, labels: labels, classes: 3, alpha: 0.4, generator: Generator(seed: UInt64(k)))
            lambdas.append(m.lambda)
            let t = m.targets.scalars
            for i in 0..<6 { #expect(abs(t[3 * i] + t[3 * i + 1] + t[3 * i + 2] - 1) < 1e-5) }
            let first = m.images.scalars[0], expected = Float(m.lambda) * 1 + Float(1 - m.lambda) * Float(m.permutation[0] + 1)
            #expect(abs(first - expected) < 1e-4)
        }
        #expect(lambdas.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(abs(lambdas.reduce(0, +) / 200 - 0.5) < 0.06)  // Beta(α, α) has mean ½
    }

    @Test func cutmixLambdaIsTheKeptArea() throws {
        let (x, labels) = try batch()
        for k in 0..<200 {
            let m = try cutmix(x, labels: labels, classes: 3, alpha: 1, generator: Generator(seed: UInt64(k)))
            let px = m.images.scalars
            for i in 0..<6 where m.permutation[i] != i {
                let kept = px[(i * 64)..<((i + 1) * 64)].filter { $0 == Float(i + 1) }.count
                #expect(abs(Double(kept) / 64 - m.lambda) < 1e-9)
            }
            let t = m.targets.scalars
            for i in 0..<6 { #expect(abs(t[3 * i] + t[3 * i + 1] + t[3 * i + 2] - 1) < 1e-5) }
        }
    }
}

@Suite struct LoaderTests {
    func data() -> MemoryDataset {
        MemoryDataset(channels: 1, height: 4, width: 4, bytes: (0..<(50 * 16)).map { UInt8($0 % 256) }, labels: (0..<50).map { $0 % 5 }, classNames: ["a", "b", "c", "d", "e"])
    }

    func epoch(_ loader: Loader) throws -> [([Float], [Int])] {
        let it = try loader.epochBatches()
        var out: [([Float], [Int])] = []
        while let b = try it.nextBatch() { out.append((b.images.scalars, b.labels)) }
        return out
    }

    /// Same seed, same batches with 0, 1 or 4 workers; a new order each epoch; every item once.
    @Test func deterministicWhateverTheWorkers() throws {
        let t = Compose([PadCrop(4, padding: 1), HorizontalFlip()])
        var runs: [[([Float], [Int])]] = []
        for workers in [0, 1, 4] {
            let l = try Loader(data(), batchSize: 8, shuffle: true, transform: t, workers: workers, prefetch: 2, seed: 11)
            runs.append(try epoch(l) + epoch(l))
        }
        for r in runs.dropFirst() {
            #expect(r.count == runs[0].count)
            for (a, b) in zip(r, runs[0]) { #expect(a.0 == b.0 && a.1 == b.1) }
        }
        let first = runs[0].prefix(7), second = runs[0].suffix(7)
        #expect(first.map(\.1) != second.map(\.1))  // reshuffled
        #expect(runs[0].count == 14 && runs[0][6].1.count == 2)  // 6 full batches and 2 left over
        let l = try Loader(data(), batchSize: 8, shuffle: true, dropLast: true, seed: 1)
        let it = try l.epochBatches()
        var indices: [Int] = []
        while let b = try it.nextBatch() { indices += b.indices }
        #expect(indices.count == 48 && Set(indices).count == 48)
    }

    @Test func subsetsAndSplits() throws {
        let d = data()
        let (train, val) = try d.split(validation: 10, seed: 3)
        #expect(train.count == 40 && val.count == 10 && Set(train.indices).isDisjoint(with: val.indices))
        #expect(try d.split(validation: 10, seed: 3).1.indices == val.indices)
        #expect(try d.limited(7).count == 7)
        #expect(throws: (any Error).self) { _ = try Subset(d, indices: [50]) }
    }
}
