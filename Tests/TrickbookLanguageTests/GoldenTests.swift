import Foundation
import Testing
@testable import TrickbookScript

/// One case of a golden script: the text between `# ---` lines, what it must print, and the
/// error it must stop with, if any.
struct GoldenCase: CustomTestStringConvertible, Sendable {
    let file: String
    let index: Int
    let firstLine: Int
    let source: String
    let expected: [String]
    let expectedError: String?

    var testDescription: String { "\(file) case \(index) (line \(firstLine))" }

    /// The scripts beside this file when the sources are there: SwiftPM copies a resource folder
    /// again only when files are added or removed, so an edited case would run stale. Else the
    /// copy in the test bundle.
    static let scriptsDir: URL? = {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("scripts")
        if FileManager.default.fileExists(atPath: here.path) { return here }
        return Bundle.module.url(forResource: "scripts", withExtension: nil)
    }()

    /// Every case of every `scripts/*.tb` file.
    static let all: [GoldenCase] = {
        guard let dir = scriptsDir,
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        var cases: [GoldenCase] = []
        for name in names.sorted() where name.hasSuffix(".tb") {
            guard let text = try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8) else { continue }
            var lines: [String] = [], start = 1, lineNo = 0
            func flush() {
                let source = lines.joined(separator: "\n")
                var expected: [String] = [], error: String?
                for l in lines {
                    if let r = l.range(of: "# expect error: ") { error = String(l[r.upperBound...]).trimmingCharacters(in: .whitespaces) } else if let r = l.range(of: "# expect: ") { expected.append(String(l[r.upperBound...])) } else if l.hasSuffix("# expect:") { expected.append("") }
                }
                if !expected.isEmpty || error != nil {
                    cases.append(GoldenCase(file: name, index: cases.filter { $0.file == name }.count + 1, firstLine: start, source: source, expected: expected, expectedError: error))
                }
                lines = []
            }
            for l in text.components(separatedBy: "\n") {
                lineNo += 1
                if l.trimmingCharacters(in: .whitespaces) == "# ---" { flush(); start = lineNo + 1; continue }
                lines.append(l)
            }
            flush()
        }
        return cases
    }()
}

@Suite struct GoldenTests {
    @Test func thereAreEnoughCases() {
        let expectations = GoldenCase.all.reduce(0) { $0 + $1.expected.count + ($1.expectedError == nil ? 0 : 1) }
        #expect(expectations >= 150, "only \(expectations) expectations in the golden scripts")
        #expect(Interpreter.registrationErrors.isEmpty, "malformed builtin signatures: \(Interpreter.registrationErrors)")
    }

    /// Each case as a tree and with its functions compiled to bytecode: both print what the case
    /// expects, and every error report (place, source line, caret, trace) is the same.
    @Test(arguments: GoldenCase.all)
    func golden(_ c: GoldenCase) throws {
        var runs: [(printed: [String], report: String?)] = []
        for compiled in [true, false] {
            let interp = Interpreter(searchPath: [GoldenCase.scriptsDir?.path ?? "."])
            interp.compilesFunctions = compiled
            var printed: [String] = []
            interp.output = { printed.append(contentsOf: $0.components(separatedBy: "\n")) }
            var failure: String?, report: String?
            do {
                try interp.run(c.source, name: "case")
            } catch let e as ScriptError {
                failure = e.headline.hasPrefix("case:") ? String(e.headline.dropFirst(5)) : e.headline
                report = e.report
            }
            let how = compiled ? "compiled" : "tree"
            #expect(printed == c.expected, "\(c.testDescription) (\(how)): printed \(printed)")
            if let want = c.expectedError {
                #expect(failure?.contains(want) == true, "\(c.testDescription) (\(how)): expected error '\(want)', got \(failure ?? "no error")")
            } else {
                #expect(failure == nil, "\(c.testDescription) (\(how)): unexpected error \(failure ?? "")")
            }
            runs.append((printed, report))
        }
        #expect(runs[0].printed == runs[1].printed && runs[0].report == runs[1].report,
                "\(c.testDescription): compiled and tree differ:\n\(runs[0].report ?? "")\n---\n\(runs[1].report ?? "")")
    }
}
