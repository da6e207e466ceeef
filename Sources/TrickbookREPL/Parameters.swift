import Foundation
import TrickbookScript

/// A notebook's parameters, as papermill gives them: `trickbook run FILE --set name=value`, read
/// in the notebook with `param(name, default)`.
public enum Parameters {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `name=value` pairs as values: true, false and nil, an int, a finite float, else the text.
    public static func parse(_ pairs: [String]) throws -> [String: Value] {
        var out: [String: Value] = [:]
        for pair in pairs {
            guard let eq = pair.firstIndex(of: "=") else { throw Failure(description: "--set \(pair): expected name=value") }
            let name = String(pair[..<eq]), text = String(pair[pair.index(after: eq)...])
            guard let first = name.unicodeScalars.first, first == "_" || CharacterSet.letters.contains(first),
                name.unicodeScalars.allSatisfy({ $0 == "_" || CharacterSet.alphanumerics.contains($0) })
            else { throw Failure(description: "--set \(pair): '\(name)' is not a name") }
            switch text {
            case "true": out[name] = .bool(true)
            case "false": out[name] = .bool(false)
            case "nil": out[name] = .nil_
            default:
                if let n = Int(text) {
                    out[name] = .int(n)
                } else if let d = Double(text), d.isFinite {
                    out[name] = .float(d)
                } else {
                    out[name] = .string(text)
                }
            }
        }
        return out
    }

    /// The warnings for parameters given but never read (most likely a typo in a name).
    public static func unread(in i: Interpreter) -> [String] {
        i.parameters.keys.sorted().filter { !i.parametersRead.contains($0) }.map {
            "warning: --set \($0): the notebook never read it with param(\"\($0)\", ...)"
        }
    }
}
