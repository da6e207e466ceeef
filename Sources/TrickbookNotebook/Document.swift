import Foundation
import TrickbookREPL

/// A notebook as the page edits it: cells with stable ids, kept line for line as in the file, so
/// that a notebook loaded and saved without edits is byte-identical (the percent format: cells
/// start at `# %%` lines, `# %% [markdown]` cells hold prose in `#` comments).
public struct Document {
    public struct Cell {
        public let id: Int
        /// The marker line as written (`# %% Train`), or nil for text before the first marker.
        public var marker: String?
        public var source: String {
            didSet { bodiless = false }
        }
        /// A marker line that ends the file: no source line follows it, not even an empty one.
        var bodiless = false

        public var isMarkdown: Bool { marker.map { Document.markerRest($0).hasPrefix("[markdown]") } ?? false }
        public var title: String {
            guard let marker else { return "" }
            var rest = Document.markerRest(marker)
            if rest.hasPrefix("[markdown]") { rest = rest.dropFirst("[markdown]".count).trimmingCharacters(in: .whitespaces) }
            return rest
        }
        /// Markdown prose: the comment lines with their `# ` removed.
        public var prose: String { Notebook.prose(source) }
    }

    public private(set) var cells: [Cell] = []
    /// Blank lines before the first marker (not a cell), kept for the byte-identical round trip.
    private var leading: [Substring]?
    private var nextID = 1

    public init(text: String) {
        var groups: [(marker: String?, lines: [Substring])] = [(nil, [])]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if Document.isMarker(line) { groups.append((String(line), [])) } else { groups[groups.count - 1].lines.append(line) }
        }
        // Text before the first marker is a cell if it holds more than blank lines.
        let first = groups.removeFirst()
        if first.lines.contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            append(marker: nil, source: first.lines.joined(separator: "\n"))
        } else if !first.lines.isEmpty {
            leading = first.lines
        }
        for g in groups {
            append(marker: g.marker, source: g.lines.joined(separator: "\n"))
            cells[cells.count - 1].bodiless = g.lines.isEmpty
        }
    }

    /// The file's text: every line as it was, edits in place.
    public var text: String {
        var lines: [String] = leading.map { $0.map(String.init) } ?? []
        for c in cells {
            if let m = c.marker { lines.append(m) }
            if !c.bodiless { lines.append(c.source) }
        }
        return lines.joined(separator: "\n")
    }

    /// The file line of a cell's first source line (1-based).
    public func firstLine(of id: Int) -> Int? {
        var line = 1 + (leading?.count ?? 0)
        for c in cells {
            if c.marker != nil { line += 1 }
            if c.id == id { return line }
            if !c.bodiless { line += c.source.split(separator: "\n", omittingEmptySubsequences: false).count }
        }
        return nil
    }

    public func index(of id: Int) -> Int? { cells.firstIndex { $0.id == id } }
    public func cell(_ id: Int) -> Cell? { index(of: id).map { cells[$0] } }

    // MARK: Edits

    @discardableResult
    public mutating func append(marker: String?, source: String) -> Int {
        cells.append(Cell(id: nextID, marker: marker, source: source))
        nextID += 1
        return nextID - 1
    }

    /// Adds an empty cell after `id` (at the end when nil); returns the new id.
    @discardableResult
    public mutating func add(after id: Int?, markdown: Bool) -> Int {
        let cell = Cell(id: nextID, marker: markdown ? "# %% [markdown]" : "# %%", source: markdown ? "# " : "")
        nextID += 1
        if let id, let k = index(of: id) { cells.insert(cell, at: k + 1) } else { cells.append(cell) }
        return cell.id
    }

    public mutating func edit(_ id: Int, source: String) {
        guard let k = index(of: id) else { return }
        cells[k].source = source
    }

    public mutating func delete(_ id: Int) {
        guard let k = index(of: id) else { return }
        cells.remove(at: k)
    }

    /// Moves a cell up (by < 0) or down. The markerless first cell, and moves that would put a
    /// cell before it, give it a marker so the file still parses back the same.
    public mutating func move(_ id: Int, by: Int) {
        guard let k = index(of: id) else { return }
        let to = max(0, min(cells.count - 1, k + by))
        guard to != k else { return }
        let cell = cells.remove(at: k)
        cells.insert(cell, at: to)
        for i in cells.indices where i > 0 && cells[i].marker == nil { cells[i].marker = "# %%" }
    }

    // MARK: The marker line

    static func isMarker(_ line: Substring) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        return t == "# %%" || t.hasPrefix("# %% ")
    }

    static func markerRest(_ marker: String) -> String {
        marker.trimmingCharacters(in: .whitespaces).dropFirst(4).trimmingCharacters(in: .whitespaces)
    }
}
