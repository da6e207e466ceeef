import CZlib
import Foundation
import Testing
@testable import TrickbookData
import TrickbookTensor

func tmp(_ name: String) -> String { NSTemporaryDirectory() + "tbdata-\(UUID().uuidString)-\(name)" }

/// A PNG written byte by byte (for color types and damage the simplified writer cannot make).
func handmadePNG(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, palette: [UInt8] = [], rows: [[UInt8]]) -> Data {
    func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + body
        let crc = typed.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        return be(UInt32(body.count)) + typed + be(crc)
    }
    func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    var raw: [UInt8] = []
    for r in rows { raw.append(0); raw += r }
    var compressedSize = compressBound(UInt(raw.count))
    var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
    _ = compress(&compressed, &compressedSize, raw, UInt(raw.count))
    var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    out += chunk("IHDR", be(UInt32(width)) + be(UInt32(height)) + [bitDepth, colorType, 0, 0, 0])
    if !palette.isEmpty { out += chunk("PLTE", palette) }
    out += chunk("IDAT", Array(compressed.prefix(Int(compressedSize))))
    out += chunk("IEND", [])
    return Data(out)
}

@Suite struct PNGTests {
    @Test func grayAndRGBRoundTripExactly() throws {
        let gray = Image(channels: 1, height: 3, width: 5, pixels: (0..<15).map { Float($0 * 17) })
        let rgb = Image(channels: 3, height: 2, width: 4, pixels: (0..<24).map { Float($0 * 10) })
        for im in [gray, rgb] {
            let p = tmp("rt.png")
            defer { try? FileManager.default.removeItem(atPath: p) }
            try PNG.write(im, to: p)
            let back = try PNG.read(p)
            #expect(back.channels == im.channels && back.pixels == im.pixels)
        }
        // Gray read as RGB repeats the plane; RGB read as gray mixes the channels.
        let p = tmp("g.png")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try PNG.write(gray, to: p)
        let asRGB = try PNG.read(p, channels: 3)
        #expect(asRGB.channels == 3 && Array(asRGB.pixels[15..<30]) == gray.pixels)
    }

    @Test func everyColorTypeReads() throws {
        // Gray + alpha and RGBA (opaque) through the simplified writer.
        let ga = tmp("ga.png"), rgba = tmp("rgba.png"), pal = tmp("pal.png"), g16 = tmp("g16.png")
        defer { for f in [ga, rgba, pal, g16] { try? FileManager.default.removeItem(atPath: f) } }
        try PNG.writeRaw([10, 255, 200, 255], width: 2, height: 1, format: TB_FORMAT_GA, to: ga)
        #expect(try PNG.read(ga).pixels == [10, 200])
        try PNG.writeRaw([1, 2, 3, 255, 4, 5, 6, 255], width: 2, height: 1, format: TB_FORMAT_RGBA, to: rgba)
        #expect(try PNG.read(rgba).pixels == [1, 4, 2, 5, 3, 6])
        // Palette (color type 3): indices 0, 1 into red and blue.
        try handmadePNG(width: 2, height: 1, bitDepth: 8, colorType: 3, palette: [255, 0, 0, 0, 0, 255], rows: [[0, 1]]).write(to: URL(fileURLWithPath: pal))
        #expect(try PNG.read(pal).pixels == [255, 0, 0, 0, 0, 255])
        // 16-bit gray: 0, 32768, 65535 keep their order and their ends.
        try handmadePNG(width: 3, height: 1, bitDepth: 16, colorType: 0, rows: [[0, 0, 128, 0, 255, 255]]).write(to: URL(fileURLWithPath: g16))
        let v = try PNG.read(g16).pixels
        #expect(v[0] == 0 && v[2] == 255 && v[1] > 100 && v[1] < 200)
    }

    @Test func damagedFilesAreErrorsNamingTheFile() throws {
        let good = handmadePNG(width: 4, height: 4, bitDepth: 8, colorType: 0, rows: Array(repeating: [1, 2, 3, 4], count: 4))
        var badCRC = good
        badCRC[badCRC.count - 20] ^= 0xFF  // inside IDAT: its CRC no longer matches
        let huge = handmadePNG(width: 100_000, height: 100_000, bitDepth: 8, colorType: 0, rows: [[0]])
        for (name, data, fragment) in [("crc.png", badCRC, "crc.png"), ("trunc.png", good.prefix(40), "trunc.png"),
                                       ("huge.png", huge, "claims 100000x100000 pixels"), ("text.png", Data("not a png".utf8), "not a readable PNG")] {
            let p = tmp(name)
            defer { try? FileManager.default.removeItem(atPath: p) }
            try data.write(to: URL(fileURLWithPath: p))
            #expect { _ = try PNG.read(p) } throws: { "\($0)".contains(fragment) }
        }
    }

    @Test func imageFolderRoundTripAndGrid() throws {
        let data = try FashionMNIST.dataset("test", limit: 12)
        let root = tmp("folder")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeImageFolder(data, to: root)
        let folder = try ImageFolder(root)
        #expect(folder.count == 12 && folder.classNames.count == 10)  // one folder per class, empty or not
        // Every image comes back with its pixels and its class name.
        var seen = 0
        for i in 0..<folder.count {
            let (im, label) = try folder.item(i)
            let name = folder.classNames[label]
            let matches = (0..<12).filter { j in
                (try? data.item(j).0.pixels) == im.pixels && data.classNames[data.labels[j]].replacingOccurrences(of: "/", with: "-") == name
            }
            if !matches.isEmpty { seen += 1 }
        }
        #expect(seen == 12)
        let grid = tmp("grid.png")
        defer { try? FileManager.default.removeItem(atPath: grid) }
        try writeGrid((0..<12).map { try data.item($0).0 }, captions: data.labels.map { data.classNames[$0] }, columns: 4, to: grid)
        let g = try PNG.read(grid)
        // 28-pixel images drawn at 112 (4 screen pixels each), one caption line, 6 pixels apart.
        #expect(g.width == 4 * (112 + 6) + 6 && g.height == 3 * (112 + 14 + 6) + 6)
    }

    /// A grid draws every picture on one range, so that a darker copy looks darker (a grid that
    /// stretched each picture to its own range drew a brightness change as no change at all);
    /// normalized pictures share the grid's own range; a marked picture gets a red frame.
    @Test func gridsShowBrightness() throws {
        let bright = Image(channels: 1, height: 4, width: 4, pixels: (0..<16).map { Float($0) * 10 + 50 })
        var dark = bright
        dark.pixels = bright.pixels.map { $0 * 0.6 }
        #expect(gridRange([bright, dark]) == 0...255)
        let png = try gridPNG([GridItem(bright), GridItem(dark)], columns: 2)
        let path = tmp("range.png")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(png).write(to: URL(fileURLWithPath: path))
        let g = try PNG.read(path)
        // Each 4-pixel image is enlarged 28 times: the first pixel of each picture, at (6, 6) and
        // (6, 6 + 112 + 6), keeps its value on the 0-255 range: 50 and 30.
        #expect(g.channels == 1 && g[0, 6, 6] == 50 && g[0, 6, 6 + 112 + 6] == 30)
        // Normalized values (below 0) share one range: the grid's least and largest value.
        let normalized = [Image(channels: 1, height: 2, width: 2, pixels: [-1, 0, 1, 2]), Image(channels: 1, height: 2, width: 2, pixels: [-0.5, 0, 0.5, 1])]
        #expect(gridRange(normalized) == -1...2)
        // A mark makes the grid color, with a red frame; a long caption line is cut to fit.
        let marked = try gridPNG([GridItem(bright, caption: "a caption far too long to fit\n(truth)", mark: .red)], columns: 1)
        try Data(marked).write(to: URL(fileURLWithPath: path))
        let m = try PNG.read(path)
        #expect(m.channels == 3 && m[0, 4, 4] == 255 && m[1, 4, 4] == 70)
        #expect(fitted("a caption far too long to fit", width: 118) == "a caption far.")
    }

    @Test func cifarBinaries() throws {
        var bytes: [UInt8] = [3] + (0..<3072).map { UInt8($0 % 256) }
        bytes += [9] + [UInt8](repeating: 7, count: 3072)
        let p = tmp("data_batch.bin")
        defer { try? FileManager.default.removeItem(atPath: p) }
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        let d = try CIFAR.load(files: [p])
        #expect(d.count == 2 && d.labels == [3, 9] && d.classNames[3] == "cat")
        let (im, _) = try d.item(0)
        #expect(im.channels == 3 && im[0, 0, 1] == 1 && im[1, 0, 0] == Float(1024 % 256))
        try Data(bytes.prefix(100)).write(to: URL(fileURLWithPath: p))
        #expect { _ = try CIFAR.load(files: [p]) } throws: { "\($0)".contains("not a whole number of 3073-byte") }
    }
}

let TB_FORMAT_GA = PNG.formatGA, TB_FORMAT_RGBA = PNG.formatRGBA
