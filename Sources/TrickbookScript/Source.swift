/// Where script text comes from and how errors point back into it.

/// A script's text split into lines, named for messages ("notebooks/00-tour.tb", "<repl>").
public final class SourceFile {
    public let name: String
    public let text: String
    public let lines: [Substring]
    /// Added to every line number reported (a notebook cell that starts at line 40 of its file).
    public let lineOffset: Int

    public init(name: String, text: String, lineOffset: Int = 0) {
        self.name = name
        // Windows line endings: "\r\n" is one Character in Swift and would match neither "\n" nor "\r".
        let text = text.contains("\r\n") ? text.replacingOccurrences(of: "\r\n", with: "\n") : text
        self.text = text
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        self.lineOffset = lineOffset
    }
}

/// A position in a source file: 1-based line and column (in characters).
public struct SourcePos: Sendable {
    public let line: Int
    public let column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
}

/// A syntax or runtime error in a script, with its location and, for runtime errors, the script
/// frames it passed through.
public struct ScriptError: Error, CustomStringConvertible {
    public let message: String
    public var file: SourceFile?
    public var pos: SourcePos?
    /// Innermost first: (function name, file, position of the call).
    public var trace: [(String, SourceFile, SourcePos)] = []
    /// True when a parse failed only because the input ended (an open brace, string or operator).
    public var incomplete = false
    /// True for syntax errors (found before running).
    public var isSyntax = false

    public init(_ message: String, file: SourceFile? = nil, pos: SourcePos? = nil) {
        self.message = message
        self.file = file
        self.pos = pos
    }

    /// `file:line:col: error: message`
    public var headline: String {
        guard let file, let pos else { return "error: \(message)" }
        return "\(file.name):\(pos.line + file.lineOffset):\(pos.column): error: \(message)"
    }

    /// The full report: headline, the source line with a caret, then the script frames.
    public var report: String {
        var out = headline
        if let file, let pos, pos.line >= 1, pos.line <= file.lines.count {
            // At most 160 characters of the line, around the error; the caret copies the tabs
            // before it so that it lines up under the same character.
            let line = Array(file.lines[pos.line - 1])
            let col = min(max(0, pos.column - 1), line.count)
            let start = max(0, min(col - 80, line.count - 160))
            let end = min(line.count, start + 160)
            let shown = String(line[start..<end]).map { $0.isASCII && ($0.asciiValue ?? 32) < 32 && $0 != "\t" ? " " : $0 }
            out += "\n    " + (start > 0 ? "…" : "") + String(shown) + (end < line.count ? "…" : "")
            let pad = line[start..<col].map { $0 == "\t" ? "\t" : " " }.joined()
            out += "\n    " + (start > 0 ? " " : "") + pad + "^"
        }
        // A run of the same frame (deep recursion) is one line with its count.
        var k = 0
        while k < trace.count {
            let (name, f, p) = trace[k]
            var run = 1
            while k + run < trace.count, trace[k + run].0 == name, trace[k + run].1 === f,
                  trace[k + run].2.line == p.line, trace[k + run].2.column == p.column { run += 1 }
            out += "\n  in \(name) (\(f.name):\(p.line + f.lineOffset):\(p.column))" + (run > 1 ? "  × \(run)" : "")
            k += run
        }
        return out
    }

    public var description: String { report }
}

/// Raised when the interrupt flag is set; `try`/`catch` in scripts does not catch it.
public struct ScriptInterrupted: Error, CustomStringConvertible {
    public let file: SourceFile?
    public let pos: SourcePos?
    public var description: String {
        guard let file, let pos else { return "interrupted" }
        return "interrupted at \(file.name):\(pos.line + file.lineOffset):\(pos.column)"
    }
}

/// The closest names to `name` among `candidates` (edit distance at most a third of its length).
func suggestion(for name: String, among candidates: [String]) -> String? {
    /// Edit distance where swapping two neighbours counts as one edit ("pirnt" → "print").
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }
    let target = Array(name)
    let limit = max(1, target.count / 3)
    var best: (String, Int)?
    for c in Set(candidates) where c != name {
        let d = distance(target, Array(c))
        guard d <= limit else { continue }
        if let b = best, d > b.1 || (d == b.1 && c >= b.0) { continue }
        best = (c, d)
    }
    return best?.0
}

public func didYouMean(_ name: String, _ candidates: [String]) -> String {
    // The edit distance costs |name|·|candidate|: a very long name gets no suggestion.
    guard name.count <= 100 else { return "" }
    return suggestion(for: name, among: candidates.filter { $0.count <= 200 }).map { " (did you mean '\($0)'?)" } ?? ""
}
