import Testing
@testable import TrickbookScript

/// Input that makes Swift code recurse deeply: each is an error with a clear message, or works,
/// and never overflows the stack (the issue's examples, one per row).
@Suite struct DeepInputTests {
    static let chain = 100_000

    @Test(arguments: [
        ("1" + String(repeating: "+1", count: chain), "expression nested too deeply"),
        ("let a = true\na" + String(repeating: " or a", count: chain), "expression nested too deeply"),
        ("fn f() { return f }\nf" + String(repeating: "()", count: chain), "expression nested too deeply"),
        ("let m = {\"a\": 1}\nm" + String(repeating: ".a", count: chain), "expression nested too deeply"),
        ("2" + String(repeating: " ** 2", count: chain), "expression nested too deeply"),
        (String(repeating: "-", count: chain) + "1", "expression nested too deeply"),
        (String(repeating: "not ", count: chain) + "true", "expression nested too deeply"),
        (String(repeating: "fn f() {\n", count: 50_000) + String(repeating: "}\n", count: 50_000), "functions nested too deeply"),
        ("if false {}" + String(repeating: " else if false {}", count: chain), "nested too deeply"),
        (String(repeating: "\"{", count: 1000) + "1" + String(repeating: "}\"", count: 1000), "strings nested too deeply"),
        ("fn f(a = f()) { return a }\nf()", "recursion depth exceeded (500) in the default of 'a' of f()"),
    ])
    func deepSourceIsAnError(source: String, message: String) throws {
        let i = Interpreter()
        do {
            try i.run(source, name: "deep")
            Issue.record("no error for \(source.prefix(40))…")
        } catch let e as ScriptError {
            #expect(e.message.contains(message), "\(e.message)")
        }
        // `trickbook check` compiles without running: the same error, no crash.
        if !message.hasPrefix("recursion") {
            guard case .error(let e) = i.check(source) else { Issue.record("check passed \(source.prefix(40))…"); return }
            #expect(e.message.contains(message))
        }
    }

    /// Deep structures built at run time are freed, compared and printed without recursion.
    @Test func deepValuesAreFreedAndCompared() throws {
        let i = Interpreter()
        var out: [String] = []
        i.output = { out.append($0) }
        try i.run("""
        var node = nil
        for k in 0..<200000 { node = [k, node] }
        var other = nil
        for k in 0..<200000 { other = [k, other] }
        print(node == other, node[0], len(str(node)) < 5000)
        node = nil
        other = nil
        var m = {}
        for k in 0..<200000 { m = {"next": m} }
        m = nil
        fn wrap(h) { return fn() => h() }
        var f = fn() => 0
        for k in 0..<200000 { f = wrap(f) }
        f = nil
        let a = [1]
        a.append(a)
        print(a == a.copy(), a)
        """, name: "deep")
        #expect(out == ["true 199999 true", "true [1, [...]]"], "\(out)")
    }

    /// A recursion error names each frame once, with how many times it repeats.
    @Test func recursionTraceIsShort() throws {
        let i = Interpreter()
        do {
            try i.run("fn f(n) { return f(n + 1) }\nf(0)", name: "t")
            Issue.record("no error")
        } catch let e as ScriptError {
            let lines = e.report.split(separator: "\n")
            #expect(lines.count < 10, "\(lines.count) lines")
            #expect(e.report.contains("  in f (t:1:18)  × 499"), "\(e.report)")
        }
    }
}
