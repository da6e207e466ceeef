import Foundation
import TrickbookFiles
import TrickbookTensor

/// A 3×5 pixel font for grid labels: each glyph is five rows of three bits (4 = left pixel).
private let font: [Character: [UInt8]] = [
    "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 3, 1, 7], "4": [5, 5, 7, 1, 1],
    "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 2, 2, 2], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
    "A": [2, 5, 7, 5, 5], "B": [6, 5, 6, 5, 6], "C": [3, 4, 4, 4, 3], "D": [6, 5, 5, 5, 6], "E": [7, 4, 6, 4, 7],
    "F": [7, 4, 6, 4, 4], "G": [3, 4, 5, 5, 3], "H": [5, 5, 7, 5, 5], "I": [7, 2, 2, 2, 7], "J": [1, 1, 1, 5, 2],
    "K": [5, 5, 6, 5, 5], "L": [4, 4, 4, 4, 7], "M": [5, 7, 7, 5, 5], "N": [6, 5, 5, 5, 5], "O": [2, 5, 5, 5, 2],
    "P": [6, 5, 6, 4, 4], "Q": [2, 5, 5, 6, 3], "R": [6, 5, 6, 5, 5], "S": [3, 4, 2, 1, 6], "T": [7, 2, 2, 2, 2],
    "U": [5, 5, 5, 5, 7], "V": [5, 5, 5, 5, 2], "W": [5, 5, 7, 7, 5], "X": [5, 5, 2, 5, 5], "Y": [5, 5, 2, 2, 2],
    "Z": [7, 1, 2, 4, 7], "-": [0, 0, 7, 0, 0], "/": [1, 1, 2, 4, 4], ".": [0, 0, 0, 0, 2], ":": [0, 2, 0, 2, 0],
    " ": [0, 0, 0, 0, 0], "_": [0, 0, 0, 0, 7], "%": [5, 1, 2, 4, 5], "(": [1, 2, 2, 2, 1], ")": [4, 2, 2, 2, 4],
    "+": [0, 2, 7, 2, 0], "=": [0, 7, 0, 7, 0],
]

/// Draws text into a gray or color image at (x, y), `scale` pixels per font pixel, in white.
func drawText(_ text: String, into im: inout Image, x: Int, y: Int, scale: Int) {
    var cx = x
    for ch in text.uppercased() {
        let rows = font[ch] ?? font["_"] ?? []
        for (r, bits) in rows.enumerated() {
            for col in 0..<3 where bits & (4 >> col) != 0 {
                for dy in 0..<scale { for dx in 0..<scale {
                    let px = cx + col * scale + dx, py = y + r * scale + dy
                    guard px >= 0, px < im.width, py >= 0, py < im.height else { continue }
                    for c in 0..<im.channels { im[c, py, px] = 255 }
                } }
            }
        }
        cx += 4 * scale
    }
}

/// A PNG grid of images with a caption under each (their labels), as `show_batch` writes. Each
/// image is rescaled to 0–255 by its own range, so normalized batches show too; small images are
/// enlarged to at least 64 pixels.
public func writeGrid(_ images: [Image], captions: [String], columns: Int = 8, to path: String) throws {
    try writeAtomically(Data(try gridPNG(images, captions: captions, columns: columns, name: path)), to: path)
}

/// The grid as PNG bytes (`name` is the file it is for, in errors).
public func gridPNG(_ images: [Image], captions: [String], columns: Int = 8, name: String = "grid") throws -> [UInt8] {
    guard let first = images.first else { throw TensorError("grid", "no images to show") }
    guard images.count <= 4096 else { throw TensorError("grid", "\(images.count) images: a grid shows at most 4,096") }
    guard captions.count == images.count else { throw TensorError("grid", "\(images.count) images but \(captions.count) captions") }
    let c = first.channels == 1 ? 1 : 3
    let zoom = max(1, 64 / max(first.height, first.width))
    let cellH = first.height * zoom, cellW = first.width * zoom
    let captionH = 14, pad = 4
    let cols = max(1, min(columns, images.count)), rows = (images.count + cols - 1) / cols
    let (gridH, gridW) = (rows * (cellH + captionH + pad) + pad, cols * (cellW + pad) + pad)
    guard gridH * gridW <= 1 << 28 else { throw TensorError("grid", "a grid of \(gridW)×\(gridH) pixels is too large to write") }
    var grid = Image(channels: c, height: gridH, width: gridW, fill: 24)
    for (k, im) in images.enumerated() {
        let gy = pad + (k / cols) * (cellH + captionH + pad), gx = pad + (k % cols) * (cellW + pad)
        let lo = im.pixels.min() ?? 0, hi = im.pixels.max() ?? 1
        let span = hi - lo > 1e-6 ? hi - lo : 1
        for ch in 0..<c {
            let src = min(ch, im.channels - 1)
            for y in 0..<cellH { for x in 0..<cellW {
                let v = im[src, min(im.height - 1, y / zoom), min(im.width - 1, x / zoom)]
                grid[ch, gy + y, gx + x] = (v - lo) / span * 255
            } }
        }
        drawText(String(captions[k].prefix(cellW / 8 + 1)), into: &grid, x: gx, y: gy + cellH + 2, scale: 2)
    }
    return try PNG.encode(grid, name: name)
}
