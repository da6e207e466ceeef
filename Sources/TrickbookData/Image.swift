import Foundation
import TrickbookTensor

/// One image as planes of Float values 0–255: [channels][height][width] in a flat array.
public struct Image: Sendable {
    public var channels: Int, height: Int, width: Int
    public var pixels: [Float]

    public init(channels: Int, height: Int, width: Int, pixels: [Float]) {
        (self.channels, self.height, self.width, self.pixels) = (channels, height, width, pixels)
    }

    public init(channels: Int, height: Int, width: Int, fill: Float = 0) {
        self.init(channels: channels, height: height, width: width, pixels: [Float](repeating: fill, count: channels * height * width))
    }

    @inline(__always) public subscript(c: Int, y: Int, x: Int) -> Float {
        get { pixels[(c * height + y) * width + x] }
        set { pixels[(c * height + y) * width + x] = newValue }
    }

    /// The region [y0, y0+h) × [x0, x0+w).
    public func cropped(y0: Int, x0: Int, h: Int, w: Int) -> Image {
        var out = Image(channels: channels, height: h, width: w)
        for c in 0..<channels { for y in 0..<h {
            let src = (c * height + y0 + y) * width + x0, dst = (c * h + y) * w
            for x in 0..<w { out.pixels[dst + x] = pixels[src + x] }
        } }
        return out
    }

    /// Bilinear resize (align_corners = false, as the tensor engine's).
    public func resized(height oh: Int, width ow: Int) -> Image {
        if oh == height && ow == width { return self }
        func taps(_ outN: Int, _ inN: Int) -> [(Int, Int, Float)] {
            let scale = Float(inN) / Float(outN)
            return (0..<outN).map { d in
                let s = max(0, (Float(d) + 0.5) * scale - 0.5)
                let i0 = min(Int(s), inN - 1)
                return (i0, min(i0 + 1, inN - 1), s - Float(i0))
            }
        }
        let ys = taps(oh, height), xs = taps(ow, width)
        var out = Image(channels: channels, height: oh, width: ow)
        for c in 0..<channels {
            let base = c * height * width
            for (i, (y0, y1, ly)) in ys.enumerated() {
                for (j, (x0, x1, lx)) in xs.enumerated() {
                    let top = pixels[base + y0 * width + x0] * (1 - lx) + pixels[base + y0 * width + x1] * lx
                    let bottom = pixels[base + y1 * width + x0] * (1 - lx) + pixels[base + y1 * width + x1] * lx
                    out.pixels[(c * oh + i) * ow + j] = top * (1 - ly) + bottom * ly
                }
            }
        }
        return out
    }
}

/// Stacks images of one size into a batch tensor [N, C, H, W].
public func stack(_ images: [Image]) throws -> Tensor {
    guard let first = images.first else { throw TensorError("batch", "no images to stack") }
    for (i, im) in images.enumerated() where (im.channels, im.height, im.width) != (first.channels, first.height, first.width) {
        throw TensorError("batch", "image \(i) is \(im.channels)x\(im.height)x\(im.width), image 0 is \(first.channels)x\(first.height)x\(first.width): use a transform that gives one size")
    }
    var flat: [Float] = []
    flat.reserveCapacity(images.count * first.pixels.count)
    for im in images { flat += im.pixels }
    return try Tensor(flat, shape: [images.count, first.channels, first.height, first.width])
}
