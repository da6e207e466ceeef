import Foundation
import Testing
@testable import TrickbookScript

/// Thousands of mutated and random programs through the lexer, compiler and interpreter (with a
/// step limit): each may fail with an error, none may crash.
@Suite struct FuzzTests {
    /// splitmix64: the same programs on every run.
    struct Rng {
        var s: UInt64
        mutating func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    }

    static let fragments = [
        "{", "}", "(", ")", "[", "]", "\"", "'", "\"{x}\"", "\"{1:>5}\"", "\"{", "fn", "fn(a) => a", "return", "while true",
        "for x in", "in", ":", ",", ".", "=", "+=", "**", "//", "%", "@", "not", "and", "or", "?", "0", "1", "-1", "2.5", "1e308",
        "nil", "true", "9999999999999999999", "-", "/ 0", "\n", "#", "let", "var", "x", "y", "print", "len", "range",
        "..<", "...", "[1, 2, 3]", "{\"a\": 1}", "try", "catch", "throw", "assert", "break", "continue", "if", "else",
        "import \"mathutil\"", "a[::-1]", "s[1:]", "\"ab\" * 3", "[0] * 4", "x.y", "x.append(1)", "sorted", "int(\"x\")",
        "2 ** 62", "2 ** 64", "range(10 ** 18)", ";", "\\", "\t", "é", "\u{0}",
    ]

    static func mutate(_ program: String, _ rng: inout Rng, corpus: [String]) -> String {
        var chars = Array(program)
        for _ in 0...rng.int(4) {
            let n = chars.count
            switch rng.int(6) {
            case 0 where n > 0:  // delete a run
                let a = rng.int(n), len = 1 + rng.int(min(12, n - a))
                chars.removeSubrange(a..<min(n, a + len))
            case 1:  // insert a fragment
                chars.insert(contentsOf: " " + fragments[rng.int(fragments.count)] + " ", at: rng.int(n + 1))
            case 2 where n > 1:  // duplicate a run
                let a = rng.int(n), len = 1 + rng.int(min(20, n - a))
                chars.insert(contentsOf: chars[a..<min(n, a + len)], at: rng.int(n))
            case 3:  // splice a piece of another program
                let other = Array(corpus[rng.int(corpus.count)])
                if !other.isEmpty {
                    let a = rng.int(other.count), len = 1 + rng.int(min(40, other.count - a))
                    chars.insert(contentsOf: other[a..<min(other.count, a + len)], at: rng.int(n + 1))
                }
            case 4 where n > 0:  // replace one character
                let alphabet = Array("{}()[]\"':=+-*/%.,#\n 0123456789xyz")
                chars[rng.int(n)] = alphabet[rng.int(alphabet.count)]
            default:  // truncate
                if n > 0 { chars.removeSubrange(rng.int(n)..<n) }
            }
        }
        return String(chars)
    }

    static func runOne(_ source: String) {
        let i = Interpreter(searchPath: [GoldenCase.scriptsDir?.path ?? "."])
        i.output = { _ in }
        i.stepLimit = 2000
        _ = i.check(source)
        _ = try? i.run(source, name: "fuzz")
        _ = try? i.run("print(1)", name: "after")  // the session is still usable
    }

    @Test func mutatedGoldenPrograms() {
        let corpus = GoldenCase.all.map(\.source)
        #expect(!corpus.isEmpty)
        var rng = Rng(s: 1)
        for _ in 0..<3000 {
            Self.runOne(Self.mutate(corpus[rng.int(corpus.count)], &rng, corpus: corpus))
        }
    }

    @Test func randomTokenSoup() {
        var rng = Rng(s: 2)
        for _ in 0..<1500 {
            let count = 1 + rng.int(40)
            Self.runOne((0..<count).map { _ in Self.fragments[rng.int(Self.fragments.count)] }.joined(separator: rng.int(3) == 0 ? "" : " "))
        }
    }
}
