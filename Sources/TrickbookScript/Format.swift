import Foundation

/// A format spec in `{value:spec}`: `[[fill]align][sign][0][width][,][.precision][type]`, as in
/// Python. Types: d (int), f (fixed), e (exponent), g (general), % (percent), s (string), x (hex).
struct FormatSpec {
    var fill: Character = " "
    var align: Character?
    var sign: Character = "-"
    var zeroPad = false
    var width = 0
    var grouping = false
    var precision: Int?
    var type: Character?

    struct BadSpec: Error, CustomStringConvertible { let description: String }

    init(_ spec: String) throws {
        var c = Array(spec)
        var i = 0
        if c.count >= 2, "<>^=".contains(c[1]) { fill = c[0]; align = c[1]; i = 2 } else if let f = c.first, "<>^=".contains(f) { align = f; i = 1 }
        if i < c.count, "+- ".contains(c[i]) { sign = c[i]; i += 1 }
        if i < c.count, c[i] == "0" { zeroPad = true; i += 1 }
        var w = ""
        while i < c.count, c[i].isNumber { w.append(c[i]); i += 1 }
        width = Int(w) ?? 0
        guard w.count <= 5 else { throw BadSpec(description: "width \(w) is too large") }
        if i < c.count, c[i] == "," { grouping = true; i += 1 }
        if i < c.count, c[i] == "." {
            i += 1
            var p = ""
            while i < c.count, c[i].isNumber { p.append(c[i]); i += 1 }
            guard let n = Int(p), p.count <= 3 else { throw BadSpec(description: "'.' needs a precision from 0 to 999") }
            precision = n
        }
        if i < c.count, "dfeg%sx".contains(c[i]) { type = c[i]; i += 1 }
        guard i == c.count else { throw BadSpec(description: "unexpected '\(c[i])'") }
        c = []
    }

    func apply(_ v: Value) throws -> String {
        var body: String
        var negative = false
        let isNumber = v.number != nil
        switch type {
        case "s"?: body = v.str
        case "d"?:
            guard case .int(let n) = v else { throw BadSpec(description: "format 'd' needs an int, got \(v.typeName)") }
            negative = n < 0
            body = String(n.magnitude)
            if grouping { body = group(body) }
        case "x"?:
            guard case .int(let n) = v else { throw BadSpec(description: "format 'x' needs an int, got \(v.typeName)") }
            negative = n < 0
            body = String(n.magnitude, radix: 16)
        case "f"?, "e"?, "g"?, "%"?:
            guard var d = v.number else { throw BadSpec(description: "format '\(type ?? " ")' needs a number, got \(v.typeName)") }
            if type == "%" { d *= 100 }
            negative = d < 0 || (d == 0 && d.sign == .minus)
            d = Swift.abs(d)
            let p = precision ?? 6
            switch type {
            case "e"?: body = String(format: "%.\(p)e", d)
            case "g"?: body = String(format: "%.\(max(p, 1))g", d)
            default: body = String(format: "%.\(p)f", d)
            }
            if grouping { body = groupFixed(body) }
            if type == "%" { body += "%" }
        default:
            switch v {
            case .int(let n):
                negative = n < 0
                body = String(n.magnitude)
                if grouping { body = group(body) }
            case .float(let d) where precision != nil:
                negative = d < 0
                body = String(format: "%.\(max(precision ?? 6, 1))g", Swift.abs(d))
            case .float(let d):
                negative = d < 0
                body = formatFloat(Swift.abs(d))
                if grouping { body = groupFixed(body) }
            default:
                body = v.str
                if let p = precision { body = String(body.prefix(p)) }
            }
        }
        var signText = ""
        if isNumber && type != "s" {
            if negative { signText = "-" } else if sign == "+" { signText = "+" } else if sign == " " { signText = " " }
        }
        let content = signText.count + body.count
        guard width > content else { return signText + body }
        let pad = width - content
        if zeroPad && align == nil && isNumber { return signText + String(repeating: "0", count: pad) + body }
        switch align ?? (isNumber && type != "s" ? ">" : "<") {
        case "<": return signText + body + String(repeating: fill, count: pad)
        case "^": return String(repeating: fill, count: pad / 2) + signText + body + String(repeating: fill, count: pad - pad / 2)
        case "=": return signText + String(repeating: fill, count: pad) + body
        default: return String(repeating: fill, count: pad) + signText + body
        }
    }

    /// 1234567 → 1,234,567
    private func group(_ digits: String) -> String {
        var out = ""
        for (k, ch) in digits.reversed().enumerated() {
            if k > 0 && k % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }

    private func groupFixed(_ s: String) -> String {
        guard let dot = s.firstIndex(where: { !$0.isNumber }) else { return group(s) }
        return group(String(s[..<dot])) + s[dot...]
    }
}
