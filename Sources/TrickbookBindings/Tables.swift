import Foundation
import TrickbookScript

/// Tables for summaries: a list of records (or of rows) as aligned text or as Markdown.
extension Bindings {
    /// One cell's text: floats with four significant digits, nil empty, the rest as `str` shows it.
    static func cellText(_ v: Value) -> String {
        switch v {
        case .float(let d): return String(format: "%.4g", d)
        case .nil_: return ""
        default: return v.str
        }
    }

    /// Text for `rows` under `columns`; numbers align right, text left.
    static func tableText(_ rows: [[Value]], columns: [String], markdown: Bool) -> String {
        let cells = rows.map { $0.map(cellText) }
        let numeric = columns.indices.map { c in rows.allSatisfy { row in
            guard c < row.count else { return true }
            if case .nil_ = row[c] { return true }
            return row[c].number != nil
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
            out.append("|" + columns.indices.map { c in numeric[c] ? String(repeating: "-", count: widths[c] + 1) + ":" : String(repeating: "-", count: widths[c] + 2) }.joined(separator: "|") + "|")
        } else {
            out.append(widths.map { String(repeating: "─", count: $0) }.joined(separator: "  "))
        }
        out += cells.map(line)
        return out.joined(separator: "\n")
    }

    static func registerTables(_ i: Interpreter) {
        i.row("table(rows, columns = nil, markdown = false, to = nil)",
              "Rows (records or lists) as an aligned text table, or a Markdown one; `to` also writes it to a file.",
              "print(table([{\"trick\": \"baseline\", \"top1\": 0.9012}, {\"trick\": \"+ cosine\", \"top1\": 0.9071}]))") { a in
            let items = try a.list(0)
            var columns: [String] = try a.isNil(1) ? [] : a.list(1).map(\.str)
            if columns.isEmpty {
                // Every key of the records, in the order they first appear.
                for case .map(let m) in items { for k in m.keys where !columns.contains(k.str) { columns.append(k.str) } }
            }
            var rows: [[Value]] = []
            for (n, item) in items.enumerated() {
                switch item {
                case .map(let m): rows.append(try columns.map { try m.get(.string($0)) ?? .nil_ })
                case .list(let l):
                    if columns.isEmpty { columns = (1...max(1, l.items.count)).map(String.init) }
                    rows.append(l.items)
                default: throw a.fail(0, "must be a list of records or of lists, item \(n) is \(item.typeName)")
                }
            }
            guard !columns.isEmpty else { throw a.fail(0, "has no columns: give records, lists or `columns`") }
            let text = tableText(rows, columns: columns, markdown: try a.bool(2))
            if !a.isNil(3) { try writeAtomically(text + "\n", to: try a.string(3), what: "table()") }
            return .string(text)
        }
    }

    /// Writes to a temporary name beside `path`, then renames, so a failure never leaves half a file.
    static func writeAtomically(_ text: String, to path: String, what: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        do { try text.write(toFile: tmp, atomically: false, encoding: .utf8) } catch {
            throw ScriptError("\(what): cannot write \(path): \(error.localizedDescription)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw ScriptError("\(what): cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
