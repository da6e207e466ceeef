import Foundation
import TrickbookTensor

/// What a transform drew for one image, so that a notebook can walk an image through the pipeline.
public struct Sampled: CustomStringConvertible, Sendable {
    public let transform: String
    public let values: [(String, Double)]
    public init(transform: String, values: [(String, Double)]) { self.transform = transform; self.values = values }
    public var description: String {
        transform + (values.isEmpty ? "" : "(" + values.map { "\($0.0)=\(String(format: "%.4g", $0.1))" }.joined(separator: ", ") + ")")
    }
}

/// A per-image transform: deterministic given its generator.
public protocol Transform {
    func apply(_ image: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image
    /// Whether loader workers may run it on their threads (a transform written in the language
    /// runs on the thread of its session unless it could be copied to the workers).
    var runsOnAnyThread: Bool { get }
    /// Runs a loader worker's loop (`body`), in whatever setting the transform needs on that
    /// thread (one written in the language needs a deep stack).
    func onWorker(_ body: () -> Void)
}

extension Transform {
    public var runsOnAnyThread: Bool { true }
    public func onWorker(_ body: () -> Void) { body() }
}

extension Transform {
    public func callAsFunction(_ image: Image, _ g: Generator) throws -> Image {
        var log: [Sampled] = []
        return try apply(image, g, &log)
    }
}

/// Transforms in order.
public struct Compose: Transform {
    public let steps: [any Transform]
    public init(_ steps: [any Transform]) { self.steps = steps }
    public var runsOnAnyThread: Bool { steps.allSatisfy(\.runsOnAnyThread) }
    /// Each step's setting around the loop, the first step's outermost.
    public func onWorker(_ body: () -> Void) {
        func nest(_ k: Int) { if k == steps.count { body() } else { steps[k].onWorker { nest(k + 1) } } }
        nest(0)
    }
    public func apply(_ image: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        var im = image
        for s in steps { im = try s.apply(im, g, &log) }
        return im
    }
}

func uniform(_ g: Generator, _ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * g.nextDouble() }

/// The paper's random resized crop: area 8–100% of the image and aspect ratio 3/4–4/3 drawn
/// log-uniformly; ten tries, then a center crop; resized to size × size.
public struct RandomResizedCrop: Transform {
    public let size: Int, scale: (Double, Double), ratio: (Double, Double)
    public init(_ size: Int, scale: (Double, Double) = (0.08, 1), ratio: (Double, Double) = (3.0 / 4, 4.0 / 3)) throws {
        guard size > 0, scale.0 > 0, scale.0 <= scale.1, scale.1 <= 1, ratio.0 > 0, ratio.0 <= ratio.1 else {
            throw TensorError("random_resized_crop", "needs size > 0, 0 < scale min <= max <= 1 and 0 < ratio min <= max")
        }
        (self.size, self.scale, self.ratio) = (size, scale, ratio)
    }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        let area = Double(im.height * im.width)
        for _ in 0..<10 {
            let target = area * uniform(g, scale.0, scale.1)
            let ar = Foundation.exp(uniform(g, Foundation.log(ratio.0), Foundation.log(ratio.1)))
            let w = Int((target * ar).squareRoot().rounded()), h = Int((target / ar).squareRoot().rounded())
            if w > 0 && w <= im.width && h > 0 && h <= im.height {
                let y0 = g.int(below: im.height - h + 1), x0 = g.int(below: im.width - w + 1)
                log.append(Sampled(transform: "random_resized_crop", values: [("y", Double(y0)), ("x", Double(x0)), ("h", Double(h)), ("w", Double(w)),
                                                                             ("area", Double(h * w) / area), ("aspect", Double(w) / Double(h))]))
                return im.cropped(y0: y0, x0: x0, h: h, w: w).resized(height: size, width: size)
            }
        }
        // Center crop at the nearest allowed aspect ratio.
        let inRatio = Double(im.width) / Double(im.height)
        var w = im.width, h = im.height
        if inRatio < ratio.0 { h = Int((Double(w) / ratio.0).rounded()) } else if inRatio > ratio.1 { w = Int((Double(h) * ratio.1).rounded()) }
        let y0 = (im.height - h) / 2, x0 = (im.width - w) / 2
        log.append(Sampled(transform: "random_resized_crop", values: [("center", 1), ("h", Double(h)), ("w", Double(w))]))
        return im.cropped(y0: y0, x0: x0, h: h, w: w).resized(height: size, width: size)
    }
}

/// Mirrors left–right with probability p.
public struct HorizontalFlip: Transform {
    public let p: Double
    public init(p: Double = 0.5) { self.p = p }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        let flip = g.nextDouble() < p
        log.append(Sampled(transform: "hflip", values: [("flipped", flip ? 1 : 0)]))
        guard flip else { return im }
        var out = im
        for c in 0..<im.channels { for y in 0..<im.height { for x in 0..<im.width { out[c, y, x] = im[c, y, im.width - 1 - x] } } }
        return out
    }
}

/// The paper's color augmentation: hue, saturation and brightness scaled by coefficients drawn
/// from [lo, hi] ([0.6, 1.4]). A gray image has only brightness.
public struct HSVJitter: Transform {
    public let lo: Double, hi: Double
    public init(_ lo: Double = 0.6, _ hi: Double = 1.4) { self.lo = lo; self.hi = hi }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        let cv = Float(uniform(g, lo, hi))
        guard im.channels == 3 else {
            log.append(Sampled(transform: "hsv", values: [("brightness", Double(cv))]))
            return Image(channels: im.channels, height: im.height, width: im.width, pixels: im.pixels.map { min(255, max(0, $0 * cv)) })
        }
        let cs = Float(uniform(g, lo, hi)), ch = Float(uniform(g, lo, hi))
        log.append(Sampled(transform: "hsv", values: [("hue", Double(ch)), ("saturation", Double(cs)), ("brightness", Double(cv))]))
        var out = im
        let n = im.height * im.width
        for i in 0..<n {
            let r = im.pixels[i] / 255, gg = im.pixels[n + i] / 255, b = im.pixels[2 * n + i] / 255
            let mx = max(r, gg, b), mn = min(r, gg, b), d = mx - mn
            var h: Float = 0
            if d > 0 {
                if mx == r { h = ((gg - b) / d).truncatingRemainder(dividingBy: 6) } else if mx == gg { h = (b - r) / d + 2 } else { h = (r - gg) / d + 4 }
                h /= 6
                if h < 0 { h += 1 }
            }
            var s = mx > 0 ? d / mx : 0, v = mx
            h = (h * ch).truncatingRemainder(dividingBy: 1)
            s = min(1, s * cs)
            v = min(1, v * cv)
            // HSV → RGB
            let hh = h * 6, k = Int(hh) % 6, f = hh - Float(Int(hh))
            let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
            let (ro, go, bo): (Float, Float, Float)
            switch k {
            case 0: (ro, go, bo) = (v, t, p)
            case 1: (ro, go, bo) = (q, v, p)
            case 2: (ro, go, bo) = (p, v, t)
            case 3: (ro, go, bo) = (p, q, v)
            case 4: (ro, go, bo) = (t, p, v)
            default: (ro, go, bo) = (v, p, q)
            }
            out.pixels[i] = ro * 255; out.pixels[n + i] = go * 255; out.pixels[2 * n + i] = bo * 255
        }
        return out
    }
}

/// AlexNet's PCA lighting noise: rgb += V·(α ∘ λ) with α ~ N(0, σ), λ and V the eigenvalues and
/// eigenvectors of the pixel covariance (ImageNet's by default, on 0–255 values). For gray
/// images λ is the data's own standard deviation (see `estimate`).
public struct PCALighting: Transform {
    public let alphaStd: Float
    public let eigenvalues: [Float]
    /// Columns are eigenvectors: vectors[row][column].
    public let eigenvectors: [[Float]]

    public static let imagenetEigenvalues: [Float] = [55.46, 4.794, 1.148]
    public static let imagenetEigenvectors: [[Float]] = [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]

    public init(alphaStd: Float = 0.1, eigenvalues: [Float] = PCALighting.imagenetEigenvalues, eigenvectors: [[Float]] = PCALighting.imagenetEigenvectors) {
        self.alphaStd = alphaStd
        self.eigenvalues = eigenvalues
        self.eigenvectors = eigenvectors
    }

    /// Statistics from the data: the standard deviation of gray pixels, or the eigen-decomposition
    /// of the 3×3 RGB covariance (Jacobi rotations), over up to `count` images.
    public static func estimate(from data: any Dataset, count: Int = 1000, alphaStd: Float = 0.1) throws -> PCALighting {
        var sums = [Double](repeating: 0, count: 3), cross = [[Double]](repeating: [Double](repeating: 0, count: 3), count: 3)
        var n = 0.0, channels = 1
        for i in 0..<min(count, data.count) {
            let (im, _) = try data.item(i)
            channels = im.channels
            let m = im.height * im.width
            for p in 0..<m {
                var v = [Double](repeating: 0, count: 3)
                for c in 0..<im.channels { v[c] = Double(im.pixels[c * m + p]) }
                for a in 0..<3 { sums[a] += v[a]; for b in 0..<3 { cross[a][b] += v[a] * v[b] } }
                n += 1
            }
        }
        guard n > 0 else { throw TensorError("pca_lighting", "no pixels to estimate from") }
        var cov = (0..<3).map { a in (0..<3).map { b in cross[a][b] / n - sums[a] / n * sums[b] / n } }
        if channels == 1 { return PCALighting(alphaStd: alphaStd, eigenvalues: [Float(cov[0][0].squareRoot())], eigenvectors: [[1]]) }
        var v = [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]
        for _ in 0..<50 {
            for (p, q) in [(0, 1), (0, 2), (1, 2)] where abs(cov[p][q]) > 1e-12 {
                let theta = 0.5 * Foundation.atan2(2 * cov[p][q], cov[q][q] - cov[p][p])
                let c = Foundation.cos(theta), s = Foundation.sin(theta)
                for k in 0..<3 { let a = cov[k][p], b = cov[k][q]; cov[k][p] = c * a - s * b; cov[k][q] = s * a + c * b }
                for k in 0..<3 { let a = cov[p][k], b = cov[q][k]; cov[p][k] = c * a - s * b; cov[q][k] = s * a + c * b }
                for k in 0..<3 { let a = v[k][p], b = v[k][q]; v[k][p] = c * a - s * b; v[k][q] = s * a + c * b }
            }
        }
        // AlexNet uses the square roots of the covariance's eigenvalues as λ (a scale of std).
        return PCALighting(alphaStd: alphaStd, eigenvalues: (0..<3).map { Float(max(0, cov[$0][$0]).squareRoot()) }, eigenvectors: v.map { $0.map(Float.init) })
    }

    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        let k = eigenvalues.count
        guard im.channels == k || (im.channels == 1 && k == 3) else {
            throw TensorError("pca_lighting", "statistics for \(k) channels, image has \(im.channels)")
        }
        let alphas = (0..<k).map { _ in g.normal() * alphaStd }
        log.append(Sampled(transform: "pca_lighting", values: alphas.enumerated().map { ("alpha\($0.offset)", Double($0.element)) }))
        var shift = [Float](repeating: 0, count: k)
        for r in 0..<k { for c in 0..<k { shift[r] += eigenvectors[r][c] * alphas[c] * eigenvalues[c] } }
        if im.channels == 1 && k == 3 { shift = [shift.reduce(0, +) / 3] }
        var out = im
        let n = im.height * im.width
        for c in 0..<im.channels { for i in 0..<n { out.pixels[c * n + i] += shift[c] } }
        return out
    }
}

/// (x − mean) / std per channel, on 0–255 values; ImageNet's statistics by default. A gray image
/// with three-channel statistics uses their averages.
public struct Normalize: Transform {
    public let mean: [Float], std: [Float]
    public static let imagenetMean: [Float] = [123.68, 116.779, 103.939], imagenetStd: [Float] = [58.393, 57.12, 57.375]
    public init(mean: [Float] = Normalize.imagenetMean, std: [Float] = Normalize.imagenetStd) throws {
        guard mean.count == std.count, !mean.isEmpty, std.allSatisfy({ $0 > 0 }) else {
            throw TensorError("normalize", "needs as many means as positive stds, got \(mean) and \(std)")
        }
        self.mean = mean
        self.std = std
    }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        var m = mean, s = std
        if im.channels == 1 && mean.count == 3 { m = [mean.reduce(0, +) / 3]; s = [std.reduce(0, +) / 3] }
        guard m.count == im.channels else { throw TensorError("normalize", "statistics for \(m.count) channels, image has \(im.channels)") }
        var out = im
        let n = im.height * im.width
        for c in 0..<im.channels { for i in 0..<n { out.pixels[c * n + i] = (im.pixels[c * n + i] - m[c]) / s[c] } }
        return out
    }
}

/// Resizes so that the shorter side is `size`.
public struct ResizeShorter: Transform {
    public let size: Int
    public init(_ size: Int) { self.size = size }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        let scale = Double(size) / Double(min(im.height, im.width))
        return im.resized(height: max(1, Int((Double(im.height) * scale).rounded())), width: max(1, Int((Double(im.width) * scale).rounded())))
    }
}

public struct Resize: Transform {
    public let height: Int, width: Int
    public init(_ height: Int, _ width: Int) { self.height = height; self.width = width }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image { im.resized(height: height, width: width) }
}

public struct CenterCrop: Transform {
    public let size: Int
    public init(_ size: Int) { self.size = size }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        guard im.height >= size, im.width >= size else { throw TensorError("center_crop", "image \(im.height)x\(im.width) is smaller than \(size)") }
        return im.cropped(y0: (im.height - size) / 2, x0: (im.width - size) / 2, h: size, w: size)
    }
}

/// Zero padding on every side, then a random size × size crop (the CIFAR augmentation).
public struct PadCrop: Transform {
    public let size: Int, padding: Int
    public init(_ size: Int, padding: Int = 4) { self.size = size; self.padding = padding }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        let ph = im.height + 2 * padding, pw = im.width + 2 * padding
        guard ph >= size, pw >= size else { throw TensorError("pad_crop", "padded image \(ph)x\(pw) is smaller than \(size)") }
        var padded = Image(channels: im.channels, height: ph, width: pw)
        for c in 0..<im.channels { for y in 0..<im.height { for x in 0..<im.width { padded[c, y + padding, x + padding] = im[c, y, x] } } }
        let y0 = g.int(below: ph - size + 1), x0 = g.int(below: pw - size + 1)
        log.append(Sampled(transform: "pad_crop", values: [("y", Double(y0)), ("x", Double(x0))]))
        return padded.cropped(y0: y0, x0: x0, h: size, w: size)
    }
}

/// Random erasing (Zhong et al.), and cutout as its fixed-size square case: with probability p a
/// box of area fraction in `scale` and aspect in `ratio` is set to `value`.
public struct RandomErasing: Transform {
    public let p: Double, scale: (Double, Double), ratio: (Double, Double), value: Float
    public init(p: Double = 0.5, scale: (Double, Double) = (0.02, 0.33), ratio: (Double, Double) = (0.3, 3.3), value: Float = 0) {
        (self.p, self.scale, self.ratio, self.value) = (p, scale, ratio, value)
    }
    /// Cutout (DeVries & Taylor): always a size × size square (clipped at the border).
    public static func cutout(_ size: Int) -> Cutout { Cutout(size: size) }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        guard g.nextDouble() < p else { log.append(Sampled(transform: "random_erasing", values: [("erased", 0)])); return im }
        let area = Double(im.height * im.width)
        for _ in 0..<10 {
            let target = area * uniform(g, scale.0, scale.1)
            let ar = Foundation.exp(uniform(g, Foundation.log(ratio.0), Foundation.log(ratio.1)))
            let h = Int((target * ar).squareRoot().rounded()), w = Int((target / ar).squareRoot().rounded())
            guard h > 0, w > 0, h < im.height, w < im.width else { continue }
            let y0 = g.int(below: im.height - h + 1), x0 = g.int(below: im.width - w + 1)
            var out = im
            for c in 0..<im.channels { for y in y0..<(y0 + h) { for x in x0..<(x0 + w) { out[c, y, x] = value } } }
            log.append(Sampled(transform: "random_erasing", values: [("erased", 1), ("y", Double(y0)), ("x", Double(x0)), ("h", Double(h)), ("w", Double(w))]))
            return out
        }
        return im
    }
}

public struct Cutout: Transform {
    public let size: Int
    public init(size: Int) { self.size = size }
    public func apply(_ im: Image, _ g: Generator, _ log: inout [Sampled]) throws -> Image {
        let cy = g.int(below: im.height), cx = g.int(below: im.width)
        let y0 = max(0, cy - size / 2), y1 = min(im.height, cy - size / 2 + size)
        let x0 = max(0, cx - size / 2), x1 = min(im.width, cx - size / 2 + size)
        var out = im
        for c in 0..<im.channels { for y in y0..<max(y0, y1) { for x in x0..<max(x0, x1) { out[c, y, x] = 0 } } }
        log.append(Sampled(transform: "cutout", values: [("y", Double(y0)), ("x", Double(x0)), ("h", Double(y1 - y0)), ("w", Double(x1 - x0))]))
        return out
    }
}

/// The paper's training pipeline: random resized crop, flip, HSV scaling, PCA lighting, normalization.
public func paperTrainPipeline(size: Int = 224, lighting: PCALighting = PCALighting()) throws -> Compose {
    Compose([try RandomResizedCrop(size), HorizontalFlip(), HSVJitter(), lighting, try Normalize()])
}

/// The paper's validation pipeline: shorter side to 256 (for 224), center crop, normalize.
public func paperValidationPipeline(size: Int = 224) throws -> Compose {
    Compose([ResizeShorter(size * 8 / 7), CenterCrop(size), try Normalize()])
}
