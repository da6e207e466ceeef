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
    "+": [0, 2, 7, 2, 0], "=": [0, 7, 0, 7, 0], ",": [0, 0, 0, 2, 4], "'": [2, 2, 0, 0, 0], "!": [2, 2, 2, 0, 2],
    "?": [6, 1, 2, 0, 2], "[": [3, 2, 2, 2, 3], "]": [6, 2, 2, 2, 6], "<": [1, 2, 4, 2, 1], ">": [4, 2, 1, 2, 4],
    "*": [0, 5, 2, 5, 0], "#": [5, 7, 5, 7, 5], "&": [2, 5, 2, 5, 3],
]

/// A color for text and frames in a grid.
public enum Ink: Sendable {
    case white, red, green
    var rgb: (Float, Float, Float) {
        switch self {
        case .white: (255, 255, 255)
        case .red: (255, 70, 70)
        case .green: (90, 220, 90)
        }
    }
}

/// Draws text into a color image at (x, y), `scale` pixels per font pixel.
func drawText(_ text: String, into im: inout Image, x: Int, y: Int, scale: Int, ink: Ink = .white) {
    var cx = x
    let rgb = ink.rgb
    for ch in text.uppercased() {
        let rows = font[ch] ?? font["_"] ?? []
        for (r, bits) in rows.enumerated() {
            for col in 0..<3 where bits & (4 >> col) != 0 {
                for dy in 0..<scale { for dx in 0..<scale {
                    let px = cx + col * scale + dx, py = y + r * scale + dy
                    guard px >= 0, px < im.width, py >= 0, py < im.height else { continue }
                    im[0, py, px] = rgb.0
                    if im.channels == 3 { im[1, py, px] = rgb.1; im[2, py, px] = rgb.2 }
                }
                }
            }
        }
        cx += 4 * scale
    }
}

/// One picture of a grid: the image, its caption (lines split at "\n") and how it is marked.
public struct GridItem: Sendable {
    public var image: Image
    public var caption: String
    /// A frame in this color and the caption's lines after the first in it (a wrong prediction).
    public var mark: Ink?
    public init(_ image: Image, caption: String = "", mark: Ink? = nil) { (self.image, self.caption, self.mark) = (image, caption, mark) }
}

/// The range a grid maps to black..white: 0–255 when every pixel is in it (images as decoded),
/// else the grid's own least and largest value (normalized images). One range for every picture,
/// so that a change of brightness or contrast between them shows.
public func gridRange(_ images: [Image]) -> ClosedRange<Float> {
    var lo = Float.infinity, hi = -Float.infinity
    for im in images { for v in im.pixels where v.isFinite { lo = min(lo, v); hi = max(hi, v) } }
    guard lo <= hi else { return 0...255 }
    if lo >= 0, hi <= 255 { return 0...255 }
    return hi - lo > 1e-6 ? lo...hi : lo...(lo + 1)
}

/// Pixels a small image is enlarged to (its longer side), so that a 28-pixel garment is drawn at
/// 112 pixels, four screen pixels to each of its own.
public let gridCellSide = 112
/// Caption characters a line holds at the grid's font (4 pixels a character, twice enlarged).
let captionCharWidth = 8, captionLineHeight = 12

/// A caption line that fits `width` pixels: cut, with a "." where it was cut.
func fitted(_ line: String, width: Int) -> String {
    let n = max(1, width / captionCharWidth)
    return line.count <= n ? line : String(line.prefix(max(1, n - 1))) + "."
}

/// A PNG grid of images with captions, as `show_batch` writes it (see `gridPNG`).
public func writeGrid(_ images: [Image], captions: [String], columns: Int = 8, to path: String) throws {
    let items = zip(images, captions).map { GridItem($0, caption: $1) }
    try writeAtomically(Data(try gridPNG(items, columns: columns, name: path)), to: path)
}

/// The grid as PNG bytes (`name` is the file it is for, in errors). Every picture is drawn on
/// one range (`range`, else `gridRange`), enlarged to about 112 pixels, in color (gray images
/// in gray), with its caption's lines (at most three) under it, each cut to the picture's width.
public func gridPNG(_ items: [GridItem], columns: Int = 8, range: ClosedRange<Float>? = nil, name: String = "grid") throws -> [UInt8] {
    guard let first = items.first?.image else { throw TensorError("grid", "no images to show") }
    guard items.count <= 4096 else { throw TensorError("grid", "\(items.count) images: a grid shows at most 4,096") }
    guard items.allSatisfy({ $0.image.height == first.height && $0.image.width == first.width && $0.image.channels == first.channels }) else {
        throw TensorError("grid", "the images differ in size")
    }
    let zoom = max(1, gridCellSide / max(first.height, first.width))
    let cellH = first.height * zoom, cellW = first.width * zoom
    let lines = items.map { $0.caption.split(separator: "\n", omittingEmptySubsequences: false).prefix(3).map(String.init) }
    let lineCount = lines.map { $0.count }.max() ?? 0
    let captionH = lines.allSatisfy({ $0.allSatisfy(\.isEmpty) }) ? 0 : lineCount * captionLineHeight + 2
    let pad = 6
    let cols = max(1, min(columns, items.count)), rows = (items.count + cols - 1) / cols
    let (gridH, gridW) = (rows * (cellH + captionH + pad) + pad, cols * (cellW + pad) + pad)
    guard gridH * gridW <= 1 << 28 else { throw TensorError("grid", "a grid of \(gridW)×\(gridH) pixels is too large to write") }
    let r = range ?? gridRange(items.map(\.image))
    let span = r.upperBound - r.lowerBound > 1e-12 ? r.upperBound - r.lowerBound : 1
    var grid = Image(channels: 3, height: gridH, width: gridW, fill: 24)
    for (k, item) in items.enumerated() {
        let im = item.image
        let gy = pad + (k / cols) * (cellH + captionH + pad), gx = pad + (k % cols) * (cellW + pad)
        if let mark = item.mark {
            // A frame of 3 pixels around the picture, in the padding.
            let rgb = mark.rgb
            for y in max(0, gy - 3)..<min(gridH, gy + cellH + 3) { for x in max(0, gx - 3)..<min(gridW, gx + cellW + 3) {
                grid[0, y, x] = rgb.0; grid[1, y, x] = rgb.1; grid[2, y, x] = rgb.2
            } }
        }
        for ch in 0..<3 {
            let src = min(ch, im.channels - 1)
            for y in 0..<cellH { for x in 0..<cellW {
                let v = im[src, min(im.height - 1, y / zoom), min(im.width - 1, x / zoom)]
                grid[ch, gy + y, gx + x] = v.isFinite ? min(255, max(0, (v - r.lowerBound) / span * 255)) : 0
            } }
        }
        for (n, line) in lines[k].enumerated() {
            drawText(fitted(line, width: cellW + pad), into: &grid, x: gx, y: gy + cellH + 3 + n * captionLineHeight, scale: 2,
                     ink: n > 0 ? item.mark ?? .white : .white)
        }
    }
    if first.channels == 1, items.allSatisfy({ $0.mark == nil }) {
        // Gray pictures and white text: one channel is the same picture, a third of the bytes.
        return try PNG.encode(Image(channels: 1, height: gridH, width: gridW, pixels: Array(grid.pixels[0..<(gridH * gridW)])), name: name)
    }
    return try PNG.encode(grid, name: name)
}
