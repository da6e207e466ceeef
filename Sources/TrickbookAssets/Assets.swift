import CAssets

/// The files built into the binary (Sources/CAssets): the stdlib's modules and the notebook page's
/// stylesheet and script. A binary copied alone onto a PATH still has them.
public enum Assets {
    /// Every embedded file's text by name ("stdlib/train.tb", "web/notebook.js").
    public static let files: [String: String] = {
        var count = 0
        guard let table = tb_assets(&count) else { return [:] }
        var out: [String: String] = [:]
        for k in 0..<count {
            let a = table[k]
            guard let name = a.name else { continue }
            let bytes = a.bytes.map { UnsafeBufferPointer(start: $0, count: a.size) } ?? UnsafeBufferPointer(start: nil, count: 0)
            out[String(cString: name)] = String(decoding: bytes, as: UTF8.self)
        }
        return out
    }()

    /// The stdlib's modules by file name ("train.tb"), for `import`.
    public static var stdlib: [String: String] {
        var out: [String: String] = [:]
        for (name, text) in files where name.hasPrefix("stdlib/") { out[String(name.dropFirst("stdlib/".count))] = text }
        return out
    }
}
