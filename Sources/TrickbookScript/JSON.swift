import Foundation

/// Language values as JSON text and back, for what a run keeps between sessions (an ablation's
/// finished rows). Neither direction recurses: nesting is walked with an explicit stack, so a
/// file nested a million deep is a clear error, not a stack overflow. Floats keep every bit
/// (Swift's shortest round-trip form, always with a "." or an exponent so that they read back
/// as floats); NaN and the infinities are written as Python's json module writes them.
public enum JSON {
    /// Nesting deeper than this is refused, both ways.
    public static let maxDepth = 10_000

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    // MARK: Writing

    /// A list or map being written: which item comes next.
    private struct Open {
        let list: ListRef?, map: MapRef?
        let oneLine: Bool, id: ObjectIdentifier
        var next = 0
        var count: Int { list?.items.count ?? map?.count ?? 0 }
    }

    /// The value as JSON: two spaces of indent per level, a list or map of plain values on one line.
    public static func encode(_ value: Value) throws -> String {
        var out = ""
        var stack: [Open] = []
        var onPath = Set<ObjectIdentifier>()

        /// Where the item being written is, as subscripts from the top ("[\"rows\"][2]").
        func path() -> String {
            var p = ""
            for open in stack {
                p += "[\(open.map.map { $0.keys[open.next - 1].repr } ?? String(open.next - 1))]"
            }
            return p.isEmpty ? "the value itself" : "at \(p)"
        }

        func isPlain(_ v: Value) -> Bool {
            switch v {
            case .nil_, .bool, .int, .float, .string: return true
            default: return false
            }
        }

        func enter(_ id: ObjectIdentifier) throws {
            guard !onPath.contains(id) else { throw Failure(description: "a list or map contains itself (\(path())): JSON cannot hold a cycle") }
            guard stack.count < maxDepth else { throw Failure(description: "nested more than \(maxDepth) deep (\(path()))") }
            onPath.insert(id)
        }

        /// Writes a plain value, or opens a list or map (pushing it).
        func write(_ v: Value) throws {
            switch v {
            case .nil_: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let n): out += String(n)
            case .float(let d): out += number(d)
            case .string(let s): quote(s, into: &out)
            case .list(let l):
                guard l.items.count > 0 else { out += "[]"; return }
                try enter(ObjectIdentifier(l))
                out += "["
                stack.append(Open(list: l, map: nil, oneLine: l.items.allSatisfy(isPlain), id: ObjectIdentifier(l)))
            case .map(let m):
                guard m.count > 0 else { out += "{}"; return }
                try enter(ObjectIdentifier(m))
                out += "{"
                stack.append(Open(list: nil, map: m, oneLine: m.values.allSatisfy(isPlain), id: ObjectIdentifier(m)))
            default:
                throw Failure(description: "a \(v.typeName) cannot be written as JSON (\(path())): only nil, bools, numbers, strings, lists and maps")
            }
        }

        func newline(_ depth: Int) {
            out += "\n"
            out += String(repeating: "  ", count: depth)
        }

        try write(value)
        while var top = stack.last {
            let depth = stack.count
            if top.next == top.count {
                if !top.oneLine { newline(depth - 1) }
                out += top.map == nil ? "]" : "}"
                onPath.remove(top.id)
                stack.removeLast()
                continue
            }
            if top.next > 0 { out += top.oneLine ? ", " : "," }
            if !top.oneLine { newline(depth) }
            let i = top.next
            top.next += 1
            stack[depth - 1] = top
            if let m = top.map {
                guard case .string(let key) = m.keys[i] else {
                    throw Failure(description: "the map key \(m.keys[i].repr) is not a string (\(path())): JSON keys are strings")
                }
                quote(key, into: &out)
                out += ": "
                try write(m.values[i])
            } else if let l = top.list {
                try write(l.items[i])
            }
        }
        return out
    }

    static func number(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        let s = "\(d)"
        return s.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? s : s + ".0"
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    // MARK: Reading

    private enum Building {
        case list([Value])
        case map(MapRef, key: String)
    }

    /// The value of a JSON text. `name` (a file's) starts the message of an error, with the line
    /// and column where the text went wrong.
    public static func decode(_ text: String, name: String) throws -> Value {
        try decode(Array(text.utf8), name: name)
    }

    /// `decode` of a file's bytes (UTF-8).
    public static func decode(_ bytes: [UInt8], name: String) throws -> Value {
        var p = Reader(bytes: bytes, name: name)
        var stack: [Building] = []
        while true {
            // A value starts here.
            p.skipSpace()
            var value: Value
            switch p.peek {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                let isList = p.take(UInt8(ascii: "["))
                if !isList { p.advance() }
                guard stack.count < maxDepth else { throw p.fail("nested more than \(maxDepth) deep") }
                p.skipSpace()
                if p.take(UInt8(ascii: isList ? "]" : "}")) {
                    value = isList ? .list(ListRef([])) : .map(MapRef())
                } else {
                    stack.append(isList ? .list([]) : .map(MapRef(), key: try p.key()))
                    continue
                }
            default:
                value = try p.scalar()
            }
            // Hand the value to the list or map it is in; closing one hands that on in turn.
            while true {
                guard let top = stack.popLast() else {
                    p.skipSpace()
                    guard p.atEnd else { throw p.fail("unexpected text after the value") }
                    return value
                }
                p.skipSpace()
                switch top {
                case .list(var items):
                    items.append(value)
                    if p.take(UInt8(ascii: ",")) {
                        stack.append(.list(items))
                    } else if p.take(UInt8(ascii: "]")) {
                        value = .list(ListRef(items))
                        continue
                    } else {
                        throw p.fail("expected ',' or ']' in a list")
                    }
                case .map(let m, let key):
                    try m.set(.string(key), value)
                    if p.take(UInt8(ascii: ",")) {
                        p.skipSpace()
                        stack.append(.map(m, key: try p.key()))
                    } else if p.take(UInt8(ascii: "}")) {
                        value = .map(m)
                        continue
                    } else {
                        throw p.fail("expected ',' or '}' in an object")
                    }
                }
                break
            }
        }
    }

    /// A cursor over the text's bytes.
    private struct Reader {
        let bytes: [UInt8]
        let name: String
        var at = 0

        var atEnd: Bool { at >= bytes.count }
        var peek: UInt8? { at < bytes.count ? bytes[at] : nil }
        mutating func advance() { at += 1 }

        mutating func take(_ b: UInt8) -> Bool {
            guard peek == b else { return false }
            at += 1
            return true
        }

        mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { at += 1 }
        }

        /// "name:line:col: message" at the cursor.
        func fail(_ message: String) -> Failure {
            var line = 1, col = 1
            for b in bytes[0..<min(at, bytes.count)] {
                if b == 0x0A { line += 1; col = 1 } else if b & 0xC0 != 0x80 { col += 1 }
            }
            return Failure(description: "\(name):\(line):\(col): \(message)")
        }

        /// An object's key and its colon.
        mutating func key() throws -> String {
            guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key in an object") }
            let k = try string()
            skipSpace()
            guard take(UInt8(ascii: ":")) else { throw fail("expected ':' after the key \"\(k)\"") }
            return k
        }

        mutating func scalar() throws -> Value {
            guard let b = peek else { throw fail("expected a value, found the end of the text") }
            switch b {
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                if b == UInt8(ascii: "-"), word("-Infinity") { return .float(-.infinity) }
                return try number()
            default:
                if word("true") { return .bool(true) }
                if word("false") { return .bool(false) }
                if word("null") { return .nil_ }
                if word("NaN") { return .float(.nan) }
                if word("Infinity") { return .float(.infinity) }
                throw fail("expected a value (a string, number, list, object, true, false or null)")
            }
        }

        mutating func word(_ w: String) -> Bool {
            let u = Array(w.utf8)
            guard at + u.count <= bytes.count, Array(bytes[at..<at + u.count]) == u else { return false }
            at += u.count
            return true
        }

        mutating func number() throws -> Value {
            let start = at
            func digits() -> Int {
                let s = at
                while let b = peek, b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") { at += 1 }
                return at - s
            }
            _ = take(UInt8(ascii: "-"))
            var isFloat = false
            guard digits() > 0 else { throw fail("expected digits in a number") }
            if take(UInt8(ascii: ".")) {
                isFloat = true
                guard digits() > 0 else { throw fail("expected digits after '.' in a number") }
            }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                isFloat = true
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard digits() > 0 else { throw fail("expected digits in a number's exponent") }
            }
            let text = String(decoding: bytes[start..<at], as: UTF8.self)
            if isFloat, let d = Double(text) { return .float(d) }
            if !isFloat, let n = Int(text) { return .int(n) }
            at = start
            throw fail(isFloat ? "\(text) is not a number" : "the integer \(text) does not fit in 64 bits")
        }

        mutating func string() throws -> String {
            at += 1  // the opening quote
            var out = [UInt8]()
            while true {
                guard let b = peek else { throw fail("a string is not closed") }
                at += 1
                switch b {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw fail("a string is not closed") }
                    at += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        if (0xD800..<0xDC00).contains(code), word("\\u") {
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("a \\u escape pairs a high surrogate with \(low)") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw fail("a \\u escape is not a character (a lone surrogate)") }
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default:
                        at -= 2
                        throw fail("unknown escape '\\\(Character(Unicode.Scalar(e)))' in a string")
                    }
                case 0..<0x20:
                    at -= 1
                    throw fail("a control character inside a string (write it as an escape)")
                default:
                    out.append(b)
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let b = peek, let d = Character(Unicode.Scalar(b)).hexDigitValue else { throw fail("expected 4 hex digits after \\u") }
                at += 1
                v = v * 16 + UInt32(d)
            }
            return v
        }
    }
}
