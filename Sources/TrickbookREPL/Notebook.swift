import Foundation

/// A notebook: a `.tb` script whose cells are separated by `# %%` lines (the percent format that
/// VS Code and Jupytext read). `# %% [markdown]` cells hold prose in `#` comments.
public struct Notebook {
    public struct Cell {
        /// 1-based position in the notebook.
        public let number: Int
        public let title: String
        public let isMarkdown: Bool
        /// The cell's text, without its marker line.
        public let source: String
        /// The file line of the cell's first source line (1-based).
        public let firstLine: Int

        /// Markdown prose: the comment lines with their `# ` removed.
        public var prose: String { Notebook.prose(source) }
    }

    /// A markdown cell's text without the `# ` that starts each of its lines.
    public static func prose(_ source: String) -> String {
        source.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var l = Substring(line)
            if l.hasPrefix("#") { l = l.dropFirst(); if l.hasPrefix(" ") { l = l.dropFirst() } }
            return String(l)
        }.joined(separator: "\n").trimmingCharacters(in: .newlines)
    }

    public let name: String
    public let cells: [Cell]

    public init(name: String, text: String) {
        self.name = name
        var cells: [Cell] = []
        var lines: [Substring] = []
        var title = "", markdown = false, first = 1, sawMarker = false
        func flush() {
            let source = lines.joined(separator: "\n")
            // Text before the first marker is a cell only if it holds something besides blank lines.
            if sawMarker || !source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                cells.append(Cell(number: cells.count + 1, title: title, isMarkdown: markdown, source: source, firstLine: first))
            }
        }
        for (k, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "# %%" || trimmed.hasPrefix("# %% ") {
                flush()
                sawMarker = true
                var rest = trimmed.dropFirst(4).trimmingCharacters(in: .whitespaces)
                markdown = rest.hasPrefix("[markdown]")
                if markdown { rest = rest.dropFirst("[markdown]".count).trimmingCharacters(in: .whitespaces) }
                title = rest
                lines = []
                first = k + 2
                continue
            }
            lines.append(line)
        }
        flush()
        self.cells = cells
    }

    /// Reads a notebook from a file, or from standard input for "-".
    public static func load(_ path: String) throws -> Notebook {
        if path == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return Notebook(name: "<stdin>", text: String(decoding: data, as: UTF8.self))
        }
        guard FileManager.default.fileExists(atPath: path) else { throw NotebookError("no such file: \(path)") }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw NotebookError("cannot read \(path) as UTF-8 text") }
        return Notebook(name: path, text: text)
    }

    /// Cell numbers from a spec: `3`, `2-5`, `1,3,6-8`, `all`.
    public func select(_ spec: String) throws -> [Int] {
        if spec == "all" { return cells.map(\.number) }
        var out: [Int] = []
        for part in spec.split(separator: ",") {
            let p = part.trimmingCharacters(in: .whitespaces)
            let bounds = p.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard (bounds.count == 1 || bounds.count == 2), let a = bounds.first ?? nil, let b = bounds.last ?? nil, a <= b else {
                throw NotebookError("bad cell selection '\(spec)': use N, A-B, a comma list, or all")
            }
            for n in a...b {
                guard n >= 1 && n <= cells.count else { throw NotebookError("cell \(n) does not exist: \(name) has \(cells.count) cells") }
                out.append(n)
            }
        }
        return out
    }
}

public struct NotebookError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
