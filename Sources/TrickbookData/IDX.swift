import CZlib
import Foundation
import TrickbookTensor

/// The IDX format of MNIST and Fashion-MNIST, gzip-compressed or plain: a magic number whose third
/// byte is the element type (0x08 = unsigned byte) and fourth the number of dimensions, then
/// big-endian 32-bit sizes, then the data.
public enum IDX {
    public struct DataError: Error, CustomStringConvertible {
        public let description: String
        init(_ path: String, _ message: String) { description = "\(path): \(message)" }
    }

    /// Reads a whole file, inflating it when it is gzip (zlib reads plain files as they are).
    static func readBytes(_ path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError(path, "no such file") }
        guard let gz = gzopen(path, "rb") else { throw DataError(path, "cannot open") }
        defer { gzclose(gz) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = gzread(gz, &chunk, UInt32(chunk.count))
            if n < 0 {
                var err: Int32 = 0
                let msg = gzerror(gz, &err).map { String(cString: $0) } ?? "unknown"
                throw DataError(path, "corrupt or truncated gzip data (\(msg))")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
            if out.count > 1 << 31 { throw DataError(path, "more than 2 GiB once inflated") }
        }
        // gzread stops quietly at a truncated stream; gzeof without an error then means the end.
        var err: Int32 = 0
        _ = gzerror(gz, &err)
        if err != Z_OK && err != Z_STREAM_END { throw DataError(path, "corrupt or truncated gzip data") }
        return out
    }

    /// The sizes and the unsigned-byte data of an IDX file.
    public static func read(_ path: String) throws -> (shape: [Int], data: [UInt8]) {
        let bytes = try readBytes(path)
        guard bytes.count >= 4 else { throw DataError(path, "too short for an IDX header (\(bytes.count) bytes)") }
        guard bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08 else {
            throw DataError(path, String(format: "wrong magic number 0x%02X%02X%02X%02X (expected 0x000008nn: unsigned bytes)", bytes[0], bytes[1], bytes[2], bytes[3]))
        }
        let rank = Int(bytes[3])
        guard rank >= 1 && rank <= 4, bytes.count >= 4 + 4 * rank else { throw DataError(path, "bad number of dimensions \(rank)") }
        var shape: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            shape.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        let start = 4 + 4 * rank
        guard count == bytes.count - start else {
            throw DataError(path, "header says \(shape) (\(count) bytes of data) but the file has \(bytes.count - start)")
        }
        return (shape, Array(bytes[start...]))
    }
}

/// Fashion-MNIST: 28×28 gray images of 10 kinds of clothing.
public enum FashionMNIST {
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"

    /// Images as [N, 1, 28, 28] with values 0–255, and labels 0–9. `limit` keeps the first N.
    public static func load(_ split: String, directory: String? = nil, limit: Int? = nil) throws -> (images: Tensor, labels: [Int]) {
        let dir = directory ?? ProcessInfo.processInfo.environment["TRICKBOOK_DATA"] ?? defaultDirectory
        let prefix: String
        switch split {
        case "train": prefix = "train"
        case "test": prefix = "t10k"
        default: throw IDX.DataError(dir, "split must be \"train\" or \"test\", got \"\(split)\"")
        }
        func path(_ kind: String) -> String {
            let base = "\(dir)/\(prefix)-\(kind)-idx\(kind == "images" ? 3 : 1)-ubyte"
            return FileManager.default.fileExists(atPath: base + ".gz") ? base + ".gz" : base
        }
        let imagesPath = path("images")
        guard FileManager.default.fileExists(atPath: imagesPath) else {
            throw IDX.DataError(imagesPath, "Fashion-MNIST is not there: install it with 'apt-get install dataset-fashion-mnist', or point TRICKBOOK_DATA at a folder with the four IDX files")
        }
        let (ishape, ibytes) = try IDX.read(imagesPath)
        let (lshape, lbytes) = try IDX.read(path("labels"))
        guard ishape.count == 3, ishape[1] == 28, ishape[2] == 28 else { throw IDX.DataError(imagesPath, "expected N×28×28 images, got \(ishape)") }
        guard lshape.count == 1, lshape[0] == ishape[0] else { throw IDX.DataError(path("labels"), "expected \(ishape[0]) labels, got \(lshape)") }
        let n = max(0, min(limit ?? ishape[0], ishape[0]))
        let images = try Tensor(ibytes.prefix(n * 784).map(Float.init), shape: [n, 1, 28, 28])
        let labels = lbytes.prefix(n).map(Int.init)
        guard labels.allSatisfy({ $0 < 10 }) else { throw IDX.DataError(path("labels"), "a label is not in 0…9") }
        return (images, labels)
    }
}
