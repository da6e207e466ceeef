/// Turns source text into tokens. Newlines are tokens (they end statements) except inside
/// parentheses and brackets.

enum Tok {
    case ident(String)
    case keyword(String)
    case int(Int)
    case float(Double)
    case string([StrPart])
    case op(String)
    case newline
    case eof
}

/// A piece of a string literal: text, or an interpolated expression with an optional format spec.
enum StrPart {
    case text(String)
    case expr([Token], spec: String?, pos: SourcePos)
}

struct Token {
    let tok: Tok
    let pos: SourcePos

    var opText: String? { if case .op(let o) = tok { return o }; return nil }
    var keywordText: String? { if case .keyword(let k) = tok { return k }; return nil }
    var isEOF: Bool { if case .eof = tok { return true }; return false }
    var isNewline: Bool { if case .newline = tok { return true }; return false }
}

let keywords: Set<String> = ["let", "var", "fn", "if", "else", "while", "for", "in", "break", "continue", "return",
                             "and", "or", "not", "true", "false", "nil", "import", "assert", "try", "catch", "throw"]

/// Operators, longest first so that `..<` wins over `.`.
private let operators = ["...", "..<", "**=", "//=", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=", "%=", "**", "//", "=>",
                         "+", "-", "*", "/", "%", "@", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ":", ";", ".", "?"]

struct Lexer {
    let file: SourceFile
    private let chars: [Character]
    private var i = 0
    private var line: Int
    private var col: Int
    /// Open brackets: inside ( and [ newlines are not statement ends; inside { (a block, even one
    /// within a call's parentheses, such as a function argument's body) they are again.
    private var brackets: [String] = []

    /// How many strings this lexer's text sits inside (`"{f("{x}")}"`): bounded, since each level
    /// lexes and compiles its expressions recursively.
    private let stringDepth: Int

    init(file: SourceFile, text: String? = nil, start: SourcePos = SourcePos(line: 1, column: 1), stringDepth: Int = 0) {
        self.stringDepth = stringDepth
        self.file = file
        chars = Array(text ?? file.text)
        line = start.line
        col = start.column
    }

    private func error(_ message: String, _ pos: SourcePos, incomplete: Bool = false) -> ScriptError {
        var e = ScriptError(message, file: file, pos: pos)
        e.incomplete = incomplete
        e.isSyntax = true
        return e
    }

    private var peek: Character? { i < chars.count ? chars[i] : nil }
    private func peek(_ k: Int) -> Character? { i + k < chars.count ? chars[i + k] : nil }

    private mutating func advance() -> Character {
        let c = chars[i]
        i += 1
        if c == "\n" { line += 1; col = 1 } else { col += 1 }
        return c
    }

    mutating func tokenize() throws -> [Token] {
        var out: [Token] = []
        while true {
            // Skip spaces and comments.
            while let c = peek {
                if c == " " || c == "\t" || c == "\r" { _ = advance() } else if c == "#" {
                    while let d = peek, d != "\n" { _ = advance() }
                } else if c == "\\" && peek(1) == "\n" {  // explicit line continuation
                    _ = advance(); _ = advance()
                } else { break }
            }
            let pos = SourcePos(line: line, column: col)
            guard let c = peek else {
                out.append(Token(tok: .eof, pos: pos))
                return out
            }
            if c == "\n" {
                _ = advance()
                if brackets.last ?? "{" == "{", let last = out.last, !last.isNewline { out.append(Token(tok: .newline, pos: pos)) }
                continue
            }
            if c.isLetter || c == "_" {
                var s = ""
                while let d = peek, d.isLetter || d.isNumber || d == "_" { s.append(advance()) }
                out.append(Token(tok: keywords.contains(s) ? .keyword(s) : .ident(s), pos: pos))
                continue
            }
            if c.isNumber {
                out.append(try number(pos))
                continue
            }
            if c == "\"" || c == "'" {
                out.append(Token(tok: .string(try string(quote: c, pos)), pos: pos))
                continue
            }
            var matched: String?
            for op in operators {
                let n = op.count
                if i + n <= chars.count && String(chars[i..<(i + n)]) == op { matched = op; break }
            }
            guard let op = matched else {
                let shown = c.unicodeScalars.allSatisfy({ $0.properties.generalCategory == .control || $0.value == 0 })
                    ? c.unicodeScalars.map { String(format: "U+%04X", $0.value) }.joined(separator: " ") : "'\(c)'"
                throw error("unexpected character \(shown)", pos)
            }
            for _ in 0..<op.count { _ = advance() }
            if op == "(" || op == "[" || op == "{" { brackets.append(op) }
            if op == ")" || op == "]" || op == "}" { _ = brackets.popLast() }
            out.append(Token(tok: .op(op), pos: pos))
        }
    }

    private mutating func number(_ pos: SourcePos) throws -> Token {
        var s = ""
        var isFloat = false
        while let d = peek, d.isNumber || d == "_" { let x = advance(); if x != "_" { s.append(x) } }
        if peek == ".", let n = peek(1), n.isNumber {
            isFloat = true
            s.append(advance())
            while let d = peek, d.isNumber || d == "_" { let x = advance(); if x != "_" { s.append(x) } }
        }
        if peek == "e" || peek == "E", let n = peek(1), n.isNumber || ((n == "-" || n == "+") && (peek(2)?.isNumber ?? false)) {
            isFloat = true
            s.append(advance())
            s.append(advance())
            while let d = peek, d.isNumber { s.append(advance()) }
        }
        if isFloat {
            guard let d = Double(s) else { throw error("malformed number '\(s)'", pos) }
            return Token(tok: .float(d), pos: pos)
        }
        guard let n = Int(s) else { throw error("integer literal '\(s)' is too large", pos) }
        return Token(tok: .int(n), pos: pos)
    }

    /// A string literal after its opening quote, split into text and `{expr:spec}` parts.
    private mutating func string(quote q: Character, _ pos: SourcePos) throws -> [StrPart] {
        _ = advance()
        var parts: [StrPart] = []
        var text = ""
        while true {
            guard let c = peek else { throw error("unterminated string", pos, incomplete: true) }
            if c == q { _ = advance(); break }
            if c == "\n" { throw error("unterminated string (a string ends on its line; use \\n for a newline)", pos) }
            if c == "\\" {
                _ = advance()
                guard let e = peek else { throw error("unterminated string", pos, incomplete: true) }
                let escPos = SourcePos(line: line, column: col - 1)
                _ = advance()
                switch e {
                case "n": text.append("\n")
                case "t": text.append("\t")
                case "\\": text.append("\\")
                case "\"": text.append("\"")
                case "'": text.append("'")
                case "{": text.append("{")
                case "}": text.append("}")
                case "0": text.append("\0")
                default: throw error("unknown escape '\\\(e)'", escPos)
                }
                continue
            }
            if c == "{" && peek(1) == "{" { _ = advance(); _ = advance(); text.append("{"); continue }
            if c == "}" && peek(1) == "}" { _ = advance(); _ = advance(); text.append("}"); continue }
            if c == "}" { throw error("single '}' in a string: write '}}' for a brace", SourcePos(line: line, column: col)) }
            if c == "{" {
                if !text.isEmpty { parts.append(.text(text)); text = "" }
                _ = advance()
                let exprPos = SourcePos(line: line, column: col)
                // The expression runs to the first ':' or '}' outside brackets and strings.
                var expr = "", spec: String?
                var nest = 0
                var inString: Character?
                while true {
                    guard let d = peek else { throw error("unterminated string", pos, incomplete: true) }
                    if d == "\n" { throw error("unterminated '{' in a string", exprPos) }
                    if let s = inString {
                        if d == "\\" { expr.append(advance()); if peek != nil { expr.append(advance()) }; continue }
                        if d == s { inString = nil }
                        expr.append(advance())
                        continue
                    }
                    // A string inside the braces may use either quote, as in Python 3.12.
                    if d == "\"" || d == "'" { inString = d; expr.append(advance()); continue }
                    if "([{".contains(d) { nest += 1 }
                    if ")]".contains(d) { nest -= 1 }
                    if d == "}" && nest > 0 { nest -= 1; expr.append(advance()); continue }
                    if d == "}" && nest == 0 { _ = advance(); break }
                    if d == ":" && nest == 0 {
                        _ = advance()
                        var sp = ""
                        while let e = peek, e != "}" {
                            if e == "\n" || e == q { throw error("unterminated '{' in a string", exprPos) }
                            sp.append(advance())
                        }
                        guard peek == "}" else { throw error("unterminated string", pos, incomplete: true) }
                        _ = advance()
                        spec = sp
                        break
                    }
                    expr.append(advance())
                }
                if expr.trimmingCharacters(in: .whitespaces).isEmpty { throw error("empty '{}' in a string", exprPos) }
                guard stringDepth < 50 else { throw error("strings nested too deeply in '{}' (more than 50 levels)", exprPos) }
                var sub = Lexer(file: file, text: expr, start: exprPos, stringDepth: stringDepth + 1)
                var toks = try sub.tokenize()
                toks.removeAll { $0.isNewline }
                parts.append(.expr(toks, spec: spec, pos: exprPos))
                continue
            }
            text.append(advance())
        }
        if !text.isEmpty || parts.isEmpty { parts.append(.text(text)) }
        return parts
    }
}

import Foundation
