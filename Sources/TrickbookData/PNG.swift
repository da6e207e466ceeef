import CPNG
import TrickbookFiles
import Foundation

/// PNG files through libpng's simplified API (Swift cannot call setjmp, which the classic API
/// needs). Any color type reads: gray, gray+alpha, RGB, RGBA, palette, 16-bit; alpha is
/// composited on black.
public enum PNG {
    /// Simplified-API formats, for `writeRaw`.
    public static let formatGray = TB_PNG_FORMAT_GRAY, formatGA = TB_PNG_FORMAT_GA, formatRGB = TB_PNG_FORMAT_RGB, formatRGBA = TB_PNG_FORMAT_RGBA

    /// Images larger than this many pixels are refused before any memory is allocated.
    public static let maxPixels = 1 << 26

    private static func message(_ img: inout png_image) -> String {
        withUnsafeBytes(of: &img.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Reads a PNG as 1 (gray) or 3 (RGB) channels, or as the file's own (nil: gray stays gray).
    public static func read(_ path: String, channels: Int? = nil) throws -> Image {
        var img = png_image()
        img.version = TB_PNG_IMAGE_VERSION
        guard png_image_begin_read_from_file(&img, path) != 0 else {
            throw IDX.DataError(path, "not a readable PNG (\(message(&img)))")
        }
        defer { png_image_free(&img) }
        let w = Int(img.width), h = Int(img.height)
        guard w > 0, h > 0, w * h <= maxPixels else {
            throw IDX.DataError(path, "claims \(w)x\(h) pixels, more than the \(maxPixels) allowed")
        }
        let fileIsColor = img.format & 2 != 0  // PNG_FORMAT_FLAG_COLOR
        let c = channels ?? (fileIsColor ? 3 : 1)
        guard c == 1 || c == 3 else { throw IDX.DataError(path, "can read as 1 or 3 channels, not \(c)") }
        img.format = c == 1 ? TB_PNG_FORMAT_GRAY : TB_PNG_FORMAT_RGB
        var buffer = [UInt8](repeating: 0, count: Int(tb_png_image_size(&img)))
        guard png_image_finish_read(&img, nil, &buffer, 0, nil) != 0 else {
            throw IDX.DataError(path, "corrupt PNG (\(message(&img)))")
        }
        // Interleaved rows → channel planes.
        var out = Image(channels: c, height: h, width: w)
        for y in 0..<h { for x in 0..<w { for ch in 0..<c { out[ch, y, x] = Float(buffer[(y * w + x) * c + ch]) } } }
        return out
    }

    /// Writes 1 or 3 channels as an 8-bit PNG, by way of a temporary file and a rename.
    public static func write(_ image: Image, to path: String) throws {
        try writeAtomically(Data(try encode(image, name: path)), to: path)
    }

    /// 1 or 3 channels as the bytes of an 8-bit PNG file.
    public static func encode(_ image: Image, name: String = "PNG") throws -> [UInt8] {
        guard image.channels == 1 || image.channels == 3 else {
            throw IDX.DataError(name, "can write 1 or 3 channels, not \(image.channels)")
        }
        let (c, h, w) = (image.channels, image.height, image.width)
        var buffer = [UInt8](repeating: 0, count: c * h * w)
        for y in 0..<h { for x in 0..<w { for ch in 0..<c {
            buffer[(y * w + x) * c + ch] = UInt8(max(0, min(255, image[ch, y, x].rounded())))
        } } }
        return try encodeRaw(buffer, width: w, height: h, format: c == 1 ? TB_PNG_FORMAT_GRAY : TB_PNG_FORMAT_RGB, name: name)
    }

    /// Writes interleaved samples in a simplified-API format (for tests of other color types).
    public static func writeRaw(_ samples: [UInt8], width: Int, height: Int, format: UInt32, to path: String) throws {
        try writeAtomically(Data(try encodeRaw(samples, width: width, height: height, format: format, name: path)), to: path)
    }

    /// Interleaved samples as PNG bytes (libpng's write to memory: a first call sizes the buffer).
    public static func encodeRaw(_ samples: [UInt8], width: Int, height: Int, format: UInt32, name: String = "PNG") throws -> [UInt8] {
        var img = png_image()
        img.version = TB_PNG_IMAGE_VERSION
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard let w = UInt32(exactly: width), let h = UInt32(exactly: height), !overflow, pixels <= maxPixels else {
            throw IDX.DataError(name, "cannot write \(width)x\(height) pixels")
        }
        let perPixel = format == TB_PNG_FORMAT_GRAY ? 1 : format == TB_PNG_FORMAT_GA ? 2 : format == TB_PNG_FORMAT_RGB ? 3 : 4
        guard samples.count == pixels * perPixel else {
            throw IDX.DataError(name, "\(samples.count) samples for \(width)x\(height) pixels of \(perPixel) channels")
        }
        img.width = w
        img.height = h
        img.format = format
        var size = 0
        let sized = samples.withUnsafeBytes { png_image_write_to_memory(&img, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard sized != 0, size > 0 else { throw IDX.DataError(name, "cannot encode (\(message(&img)))") }
        var out = [UInt8](repeating: 0, count: size)
        let ok = samples.withUnsafeBytes { raw in
            out.withUnsafeMutableBytes { png_image_write_to_memory(&img, $0.baseAddress, &size, 0, raw.baseAddress, 0, nil) }
        }
        guard ok != 0 else { throw IDX.DataError(name, "cannot encode (\(message(&img)))") }
        return Array(out.prefix(size))
    }
}

/// Images in `root/<class>/*.png`, classes in sorted folder order.
public struct ImageFolder: Dataset {
    public let root: String
    public let classNames: [String]
    public let files: [(String, Int)]
    public let channels: Int?

    public init(_ root: String, channels: Int? = nil) throws {
        let fm = FileManager.default
        guard let classes = try? fm.contentsOfDirectory(atPath: root) else { throw IDX.DataError(root, "not a readable folder") }
        let dirs = classes.filter { var d: ObjCBool = false; return fm.fileExists(atPath: root + "/" + $0, isDirectory: &d) && d.boolValue }.sorted()
        guard !dirs.isEmpty else { throw IDX.DataError(root, "has no class folders (expected root/<class>/*.png)") }
        var files: [(String, Int)] = []
        for (k, d) in dirs.enumerated() {
            let names = (try? fm.contentsOfDirectory(atPath: root + "/" + d)) ?? []
            files += names.filter { $0.lowercased().hasSuffix(".png") }.sorted().map { ("\(root)/\(d)/\($0)", k) }
        }
        self.root = root
        self.classNames = dirs
        self.files = files
        self.channels = channels
    }

    public var count: Int { files.count }

    public func item(_ i: Int) throws -> (Image, Int) {
        guard i >= 0 && i < files.count else { throw IDX.DataError(root, "index \(i) out of range for \(files.count) images") }
        return (try PNG.read(files[i].0, channels: channels), files[i].1)
    }
}

/// Writes a dataset as `root/<class>/<index>.png`.
public func writeImageFolder(_ data: any Dataset, to root: String) throws {
    let fm = FileManager.default
    for name in data.classNames { try fm.createDirectory(atPath: root + "/" + name.replacingOccurrences(of: "/", with: "-"), withIntermediateDirectories: true) }
    for i in 0..<data.count {
        let (im, label) = try data.item(i)
        let dir = root + "/" + data.classNames[label].replacingOccurrences(of: "/", with: "-")
        try PNG.write(im, to: String(format: "%@/%06d.png", dir, i))
    }
}
