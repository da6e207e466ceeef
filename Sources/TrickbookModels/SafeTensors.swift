import Foundation
import TrickbookFiles
import TrickbookTensor

/// The safetensors format: an 8-byte little-endian header length, a JSON header of
/// `{name: {dtype, shape, data_offsets}}` (plus `__metadata__`), then raw little-endian data.
/// Files written here load in PyTorch (`safetensors.torch.load_file`) and the other way round.
public enum SafeTensors {
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", i64 = "I64", f64 = "F64"
        var size: Int { switch self { case .f32: return 4; case .f16, .bf16: return 2; case .i64, .f64: return 8 } }
    }

    public struct Entry {
        public let name: String
        public let dtype: DType
        public let tensor: Tensor
    }

    /// Writes tensors (F32, or I64 for the BN batch counters, as PyTorch keeps them) to a temporary
    /// file and renames it over `path`, so that a failure never leaves half a file.
    public static func write(_ tensors: [(String, Tensor)], to path: String, metadata: [String: String] = [:]) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        var plan: [(Tensor, DType)] = []
        for (name, t) in tensors {
            guard header[name] == nil else { throw TensorError("save", "tensor name '\(name)' appears twice") }
            let dtype: DType = name.hasSuffix("num_batches_tracked") ? .i64 : .f32
            let bytes = t.count * dtype.size
            header[name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
            plan.append((t, dtype))
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces, as the reference writer does
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for (t, dtype) in plan {
            t.withUnsafeBufferPointer { b in
                switch dtype {
                case .i64: for v in b { withUnsafeBytes(of: Int64(v).littleEndian) { data.append(contentsOf: $0) } }
                default: for v in b { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
                }
            }
        }
        guard FileWrites.enabled else { return }  // (a data-parallel run's other ranks)
        let tmp = temporaryPath(for: path)
        do {
            try data.write(to: URL(fileURLWithPath: tmp))
        } catch {
            throw TensorError("save", "cannot write \(path): \(error.localizedDescription)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw TensorError("save", "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The `__metadata__` strings of a file.
    public static func metadata(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 8 else { throw TensorError("load", "cannot read \(path)") }
        let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard n <= UInt64(data.count - 8),
              let json = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(n)))) as? [String: Any] else {
            throw TensorError("load", "\(path): header is not a JSON object")
        }
        return json["__metadata__"] as? [String: String] ?? [:]
    }

    /// Reads every tensor of a file, checking the header: its length, the JSON, each dtype, shape
    /// and offset range. Errors name the file and the tensor at fault.
    public static func read(_ path: String) throws -> [Entry] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TensorError("load", "cannot read \(path)") }
        func fail(_ m: String) -> TensorError { TensorError("load", "\(path): \(m)") }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, too short for a safetensors header") }
        let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard n <= UInt64(data.count - 8) else { throw fail("header claims \(n) bytes but the file has only \(data.count - 8) after its length") }
        let headerEnd = 8 + Int(n)
        guard let json = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)), let header = json as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let payload = data.count - headerEnd
        var entries: [Entry] = []
        var ranges: [(Int, Int, String)] = []
        var planned: [(String, DType, [Int], Int, Int, Int)] = []
        for (name, value) in header.sorted(by: { $0.key < $1.key }) where name != "__metadata__" {
            guard let info = value as? [String: Any], let dt = info["dtype"] as? String, let shape = info["shape"] as? [Int],
                  let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("tensor '\(name)' has a malformed header entry")
            }
            guard let dtype = DType(rawValue: dt) else { throw fail("tensor '\(name)' has unsupported dtype \(dt) (F32, F16, BF16, F64 and I64 are read)") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor '\(name)' has a negative size in shape \(shape)") }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p <= payload else { throw fail("tensor '\(name)' has shape \(shape), larger than the file") }
                count = p
            }
            let (b, e) = (offsets[0], offsets[1])
            guard b >= 0, e >= b, e <= payload else { throw fail("tensor '\(name)' has data offsets [\(b), \(e)] outside the \(payload) data bytes") }
            guard e - b == count * dtype.size else {
                throw fail("tensor '\(name)' of shape \(shape) and dtype \(dt) needs \(count * dtype.size) bytes, its offsets give \(e - b)")
            }
            ranges.append((b, e, name))
            planned.append((name, dtype, shape, count, b, e))
        }
        // Every range is checked before any is copied: overlapping entries (one range named 300
        // times) would otherwise be copied 300 times first.
        ranges.sort { $0.0 < $1.0 }
        for (x, y) in zip(ranges, ranges.dropFirst()) where y.0 < x.1 {
            throw fail("tensors '\(x.2)' and '\(y.2)' overlap in the data")
        }
        for (name, dtype, shape, count, b, e) in planned {
            let bytes = data.subdata(in: (headerEnd + b)..<(headerEnd + e))
            let values: [Float] = bytes.withUnsafeBytes { raw in
                (0..<count).map { i -> Float in
                    switch dtype {
                    case .f32: return Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    case .f16: return floatFromFloat16Bits(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    case .bf16: return floatFromBFloat16Bits(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    case .i64: return Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                    case .f64: return Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                    }
                }
            }
            entries.append(Entry(name: name, dtype: dtype, tensor: try Tensor(values, shape: shape)))
        }
        return entries
    }
}

/// What loading a checkpoint into a model found.
public struct LoadReport: Sendable {
    public var loaded: [String] = []
    /// In the model, not in the file.
    public var missing: [String] = []
    /// In the file, not in the model.
    public var unexpected: [String] = []
}

extension Module {
    /// Saves parameters and buffers under their PyTorch names.
    public func save(to path: String) throws {
        try SafeTensors.write(stateDict(), to: path, metadata: ["format": "pt", "written_by": "trickbook"])
    }

    /// Loads a checkpoint. Shapes must match (the error names the tensor); with `strict`, missing
    /// and unexpected names are an error too, else they are reported. Nothing changes unless the
    /// whole file checks out.
    @discardableResult
    public func load(from path: String, strict: Bool = true) throws -> LoadReport {
        let entries = try SafeTensors.read(path)
        return try load(Dictionary(entries.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a }), source: path, strict: strict)
    }

    /// Loads named tensors (as read from a checkpoint) into the model; see `load(from:strict:)`.
    @discardableResult
    public func load(_ byName: [String: Tensor], source path: String, strict: Bool = true) throws -> LoadReport {
        var report = LoadReport()
        var copies: [(Tensor, Tensor)] = []
        let state = stateDict()
        for (name, t) in state {
            guard let src = byName[name] else { report.missing.append(name); continue }
            guard src.shape == t.shape else {
                throw TensorError("load", "\(path): tensor '\(name)' has shape \(src.shape) in the file but \(t.shape) in the model")
            }
            copies.append((src, t))
            report.loaded.append(name)
        }
        let known = Set(state.map(\.0))
        report.unexpected = byName.keys.sorted().filter { !known.contains($0) }
        if strict && (!report.missing.isEmpty || !report.unexpected.isEmpty) {
            throw TensorError("load", "\(path) does not match the model: missing \(report.missing.prefix(10))\(report.missing.count > 10 ? " and \(report.missing.count - 10) more" : ""), unexpected \(report.unexpected.prefix(10))\(report.unexpected.count > 10 ? " and \(report.unexpected.count - 10) more" : "")")
        }
        for (src, dst) in copies {
            src.withUnsafeBufferPointer { s in dst.withUnsafeMutableBufferPointer { d in _ = d.update(fromContentsOf: s) } }
        }
        return report
    }
}

/// Saves named tensors (any names) as safetensors.
public func saveTensors(_ tensors: [(String, Tensor)], to path: String) throws { try SafeTensors.write(tensors, to: path) }

/// Loads every tensor of a safetensors file, by name.
public func loadTensors(_ path: String) throws -> [(String, Tensor)] { try SafeTensors.read(path).map { ($0.name, $0.tensor) } }
