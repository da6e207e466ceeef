import Foundation

/// One cell of a table.
public enum Cell {
    case int(Int)
    case number(Double)
    case text(String)
    case empty

    /// Floats with four significant digits; ints as they are.
    public var text: String {
        switch self {
        case .int(let n): return String(n)
        case .number(let d): return String(format: "%.4g", d)
        case .text(let s): return s
        case .empty: return ""
        }
    }
}

public enum Table {
    /// Rows under columns as aligned text, or as Markdown; numbers align right, text left.
    public static func text(_ rows: [[Cell]], columns: [String], markdown: Bool) -> String {
        let cells = rows.map { $0.map(\.text) }
        let numeric = columns.indices.map { c in rows.allSatisfy { row in
            guard c < row.count else { return true }
            if case .text = row[c] { return false }
            return true
        } }
        let widths = columns.indices.map { c in max(markdown ? 3 : 1, ([columns[c]] + cells.map { c < $0.count ? $0[c] : "" }).map(\.count).max() ?? 0) }
        func pad(_ s: String, _ c: Int) -> String {
            let fill = String(repeating: " ", count: max(0, widths[c] - s.count))
            return numeric[c] ? fill + s : s + fill
        }
        func line(_ texts: [String]) -> String {
            let padded = columns.indices.map { pad($0 < texts.count ? texts[$0] : "", $0) }
            return markdown ? "| " + padded.joined(separator: " | ") + " |" : padded.joined(separator: "  ")
        }
        var out = [line(columns)]
        if markdown {
            out.append("|" + columns.indices.map { c in
                numeric[c] ? String(repeating: "-", count: widths[c] + 1) + ":" : String(repeating: "-", count: widths[c] + 2)
            }.joined(separator: "|") + "|")
        } else {
            out.append(widths.map { String(repeating: "─", count: $0) }.joined(separator: "  "))
        }
        out += cells.map(line)
        return out.joined(separator: "\n")
    }
}
