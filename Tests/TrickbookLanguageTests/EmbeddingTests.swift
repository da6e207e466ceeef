import Foundation
import Testing
@testable import TrickbookScript

/// A host type for the tests: a 2-vector with a property, methods, operators, indexing and
/// iteration, declared once as the bindings will declare tensors and models.
final class Vec: HostObject {
    var x: Double, y: Double
    init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
    override var hostType: HostType { Vec.type }

    static let type: HostType = {
        let t = HostType("vec", doc: "A 2-vector.")
        t.property("x", get: { .float(($0 as! Vec).x) }, set: { o, v in
            guard let d = v.number else { throw ScriptError("vec.x must be a number, got \(v.typeName)") }
            (o as! Vec).x = d
        })
        t.property("norm", get: { o in let v = o as! Vec; return .float((v.x * v.x + v.y * v.y).squareRoot()) })
        t.method(try! Builtin("scaled(factor)", doc: "The vector times a number.") { a in
            guard case .host(let o)? = a.receiver, let v = o as? Vec else { return .nil_ }
            let f = try a.number("factor")
            return .host(Vec(v.x * f, v.y * f))
        })
        t.binary = { op, a, b in
            guard case .host(let l) = a, let u = l as? Vec else { return nil }
            switch (op, b) {
            case ("+", .host(let r as Vec)): return .host(Vec(u.x + r.x, u.y + r.y))
            case ("@", .host(let r as Vec)): return .float(u.x * r.x + u.y * r.y)
            case ("*", _): if let d = b.number { return .host(Vec(u.x * d, u.y * d)) }
            case ("neg", _): return .host(Vec(-u.x, -u.y))
            default: break
            }
            return nil
        }
        t.index = { o, k in
            let v = o as! Vec
            let i = try sequenceIndex(k, count: 2, what: "vec")
            return .float(i == 0 ? v.x : v.y)
        }
        t.slice = { o, start, end, step in
            let v = o as! Vec
            let items = [Value.float(v.x), .float(v.y)]
            return .list(ListRef(try sliceIndices(count: 2, start: start, end: end, step: step).map { items[$0] }))
        }
        t.iterate = { o in
            let v = o as! Vec
            var items = [Value.float(v.x), .float(v.y)]
            return { items.isEmpty ? nil : items.removeFirst() }
        }
        t.describe = { o in let v = o as! Vec; return "vec(\(v.x), \(v.y))" }
        return t
    }()
}

func session(_ setup: (Interpreter) throws -> Void = { _ in }) rethrows -> (Interpreter, () -> [String]) {
    let interp = Interpreter()
    let box = LinesBox()
    interp.output = { box.lines.append($0) }
    try setup(interp)
    return (interp, { box.lines })
}

final class LinesBox: @unchecked Sendable { var lines: [String] = [] }

@Suite struct EmbeddingTests {
    /// The typed declarations hand each closure its receiver as the declared type; an object of
    /// another type reaching them (a binding bug) is an error, never a trapping cast.
    @Test func typedDeclarationsRefuseOtherObjects() throws {
        final class Other: HostObject { override var hostType: HostType { HostType("other", doc: "") } }
        let t = HostType("vec", doc: "A 2-vector.")
        t.property(Vec.self, "x", get: { .float($0.x) }, set: { v, value in v.x = value.number ?? 0 })
        t.length(Vec.self) { _ in 2 }
        t.describe(Vec.self) { v in "vec(\(v.x), \(v.y))" }
        let v = Vec(1, 2)
        let x = try #require(t.properties["x"])
        #expect(try x.get(v).number == 1)
        try x.set?(v, .float(5))
        let length = try t.length?(v)
        #expect(v.x == 5 && t.describe?(v) == "vec(5.0, 2.0)" && length == 2)
        #expect { try x.get(Other()) } throws: { "\($0)".contains("a other reached a vec binding") }
        #expect(throws: ScriptError.self) { try t.length?(Other()) }
        #expect(t.describe?(Other()) == "vec")
    }

    func withVec() throws -> (Interpreter, () -> [String]) {
        try session { i in
            i.register(try Builtin("vec(x, y = 0.0)", doc: "Makes a 2-vector.", example: "vec(1, 2)") { a in
                .host(Vec(try a.number("x"), try a.number("y")))
            })
            i.register(try Builtin("resnet(depth, variant = \"a\", zero_gamma = false)", doc: "Checks its arguments like a model builder.") { a in
                let depth = try a.int("depth", oneOf: [18, 34, 50, 101, 152])
                let variant = try a.string("variant", oneOf: ["a", "b", "c", "d"])
                return .string("resnet\(depth)\(variant)\(try a.bool("zero_gamma") ? "+zg" : "")")
            })
            i.register(try Builtin("explode()", doc: "Fails inside Swift.") { _ in throw CocoaError(.fileNoSuchFile) })
        }
    }

    @Test func hostObjectsThroughTheirDeclaredType() throws {
        let (i, out) = try withVec()
        try i.run("""
        let v = vec(3, 4)
        print(v, v.norm, v.x, v[1], v[-2])
        v.x = 6
        print(v + vec(1, 1), v @ vec(1, 0), v * 2, -v, v.scaled(0.5))
        var total = 0.0
        for c in v { total += c }
        print(total, type(v))
        v.x += 1
        print(v.x, v[::-1], v[1:])
        """, name: "t")
        #expect(out() == ["vec(3.0, 4.0) 5.0 3.0 4.0 3.0", "vec(7.0, 5.0) 6.0 vec(12.0, 8.0) vec(-6.0, -4.0) vec(3.0, 2.0)", "10.0 vec", "7.0 [4.0, 7.0] [4.0]"])
    }

    @Test(arguments: [
        ("resnet(51)", "resnet(): argument 'depth' must be one of 18, 34, 50, 101, 152, got 51"),
        ("resnet(50, variant: \"e\")", "resnet(): argument 'variant' must be one of \"a\", \"b\", \"c\", \"d\", got \"e\""),
        ("resnet(50, zero_gama: true)", "resnet() has no parameter 'zero_gama' (did you mean 'zero_gamma'?)"),
        ("resnet()", "resnet() missing argument 'depth'"),
        ("resnet(50, \"a\", true, 4)", "resnet() takes 3 arguments, got 4"),
        ("vec(\"x\")", "vec(): argument 'x' must be a number, got string"),
        ("vec(1).z", "vec has no member 'z'"),
        ("vec(1).norm = 3", "property 'norm' of vec is read-only"),
        ("vec(1).nrom", "(did you mean 'norm'?)"),
        ("vec(1) - vec(2)", "unsupported operand types for -: 'vec' and 'vec'"),
        ("vec(1)[2]", "index 2 out of range for vec of length 2"),
        ("explode()", "1:1: error:"),
    ])
    func uniformArgumentMessages(source: String, message: String) throws {
        let (i, _) = try withVec()
        do {
            try i.run(source, name: "t")
            Issue.record("\(source) did not fail")
        } catch let e as ScriptError {
            #expect(e.headline.contains(message), "\(e.headline)")
        }
    }

    @Test func builtinRowsFeedHelpAndCompletion() throws {
        let (i, out) = try withVec()
        try i.run("help(resnet)\nhelp(vec)", name: "t")
        let lines = out().joined(separator: "\n").components(separatedBy: "\n")
        #expect(lines[0] == "resnet(depth, variant = \"a\", zero_gamma = false)")
        #expect(lines[1] == "    Checks its arguments like a model builder.")
        #expect(lines.contains("    example: vec(1, 2)"))
        #expect(i.completions(prefix: "res") == ["resnet"])
        #expect(i.completions(prefix: "ret") == ["return"])
        try i.run("let v = vec(1)", name: "t")
        #expect(i.memberNames(of: i.global("v") ?? .nil_) == ["norm", "scaled", "x"])
        #expect(Interpreter.registrationErrors.isEmpty)
        #expect(throws: ScriptError.self) { try Builtin("bad(", doc: "") { _ in .nil_ } }
    }

    @Test func swiftCallbacksReachScriptFunctions() throws {
        let (i, _) = try session()
        try i.run("fn twice(x) { return 2 * x }", name: "t")
        #expect(try i.callValue(i.global("twice") ?? .nil_, [.int(21)]).repr == "42")
    }
}

@Suite struct ErrorReportTests {
    @Test func reportHasLocationSourceLineCaretAndTrace() throws {
        let (i, _) = try session()
        let source = """
        fn inner(x) {
          return x + nil
        }
        fn outer() { return inner(1) }
        outer()
        """
        do {
            try i.run(source, name: "nb.tb", lineOffset: 10)
            Issue.record("no error")
        } catch let e as ScriptError {
            let lines = e.report.components(separatedBy: "\n")
            #expect(lines[0] == "nb.tb:12:12: error: unsupported operand types for +: 'int' and 'nil'")
            #expect(lines[1] == "      return x + nil")
            #expect(lines[2] == "               ^")
            #expect(lines[3] == "  in inner (nb.tb:14:21)")
            #expect(lines[4] == "  in outer (nb.tb:15:1)")
        }
    }

    @Test func incompleteInputIsNotASyntaxError() throws {
        let (i, _) = try session()
        for text in ["fn f() {", "print(1 +", "let s = \"abc", "let xs = [1, 2,", "if x {\n  print(1)", "let m = {\"a\": 1,", "print(\"{x", "let y = (1"] {
            guard case .incomplete = i.check(text) else { Issue.record("'\(text)' should be incomplete"); continue }
        }
        for text in [")", "let = 3", "print(1))", "1 +* 2", "else { }"] {
            guard case .error = i.check(text) else { Issue.record("'\(text)' should be a syntax error"); continue }
        }
        guard case .complete = i.check("print(1)\nfn f() { return 2 }") else { Issue.record("complete input"); return }
    }

    @Test func failedCellLeavesSessionUsable() throws {
        let (i, out) = try session()
        try i.run("var a = 1\nlet k = 5", name: "cell1")
        #expect(throws: ScriptError.self) { try i.run("a = 2\nlet q = 1\nprint(nope)\na = 3", name: "cell2") }
        #expect(throws: ScriptError.self) { try i.run("let z = 1\nlet z2 = (", name: "cell3") }  // syntax error: nothing runs
        try i.run("print(a, k, q)\nlet k = 6\nprint(k)", name: "cell4")  // top-level `let` may be redeclared
        #expect(out() == ["2 5 1", "6"])
        #expect(i.global("z") == nil)
    }

    /// Cells run again, as a notebook does: a global declared again takes its new value for the
    /// functions that read it, and a function declared again replaces the old one for its callers.
    @Test func rerunCellsRedeclareGlobals() throws {
        let (i, out) = try session()
        try i.run("let x = 1\nfn f() { return x }", name: "a")
        try i.run("fn g() { return f() * 10 }\nprint(g())", name: "b")
        try i.run("let x = 2\nfn f() { return x + 100 }", name: "a")
        try i.run("print(g())", name: "c")
        try i.run("let x = 3", name: "a")
        try i.run("print(g(), f())", name: "c")
        #expect(out() == ["10", "1020", "1030 103"])
    }

    @Test func recursionAndNestingLimitsAreErrors() throws {
        let (i, _) = try session()
        #expect(throws: ScriptError.self) { try i.run("fn f(n) { return f(n + 1) }\nf(0)", name: "t") }
        let deep = String(repeating: "(", count: 1000) + "1" + String(repeating: ")", count: 1000)
        guard case .error(let e) = i.check(deep) else { Issue.record("deep nesting should fail"); return }
        #expect(e.message.contains("nested too deeply"))
        let fine = String(repeating: "(", count: 300) + "1" + String(repeating: ")", count: 300)
        #expect(try i.run(fine, name: "t").map(\.repr) == "1")  // 66 levels was once the limit
        let blocks = String(repeating: "if true {", count: 1100) + String(repeating: "}", count: 1100)
        guard case .error = i.check(blocks) else { Issue.record("deep blocks should fail"); return }
        try i.run("var a = []\na.append(a)\nprint(a, a == a)", name: "t")  // a list inside itself prints, compares
    }
}

@Suite struct InterruptTests {
    @Test func interruptStopsALoopAndKeepsState() throws {
        let (i, _) = try session()
        try i.run("var n = 0", name: "t")
        let flag = i.interrupt
        // A thread of its own: the dispatch pool may be busy with other tests. The step limit is
        // only a backstop, so that a broken interrupt fails the test instead of hanging it.
        i.stepLimit = 2_000_000_000
        Thread.detachNewThread { usleep(200_000); flag.set() }
        do {
            try i.run("while true { n += 1 }", name: "cell")
            Issue.record("the loop was not interrupted")
        } catch let e as ScriptInterrupted {
            #expect(e.description.contains("cell:1:1"))
        }
        i.interrupt.clear()
        guard case .int(let n)? = i.global("n") else { Issue.record("n lost"); return }
        #expect(n > 0)
        // try/catch in the script does not swallow an interrupt.
        Thread.detachNewThread { usleep(200_000); flag.set() }
        #expect(throws: ScriptInterrupted.self) { try i.run("try { while true { n += 1 } } catch e { print(\"caught\") }", name: "t") }
        i.interrupt.clear()
        try i.run("n = 0", name: "t")
    }

    /// An interrupt deep in nested calls stops at once, names a place inside the innermost
    /// function, and leaves the depth count as it was: the same recursion runs again.
    @Test func interruptInsideNestedCallsUnwindsEveryFrame() throws {
        let (i, out) = try session()
        i.stepLimit = 2_000_000_000
        try i.run("fn spin(d) { if d == 0 { while true { } }\n  return spin(d - 1) }\nfn depth(n) { if n == 0 { return 0 }\n  return 1 + depth(n - 1) }", name: "defs")
        let flag = i.interrupt
        Thread.detachNewThread { usleep(200_000); flag.set() }
        do {
            try i.run("spin(400)", name: "cell")
            Issue.record("the loop was not interrupted")
        } catch let e as ScriptInterrupted {
            #expect(e.description.contains("defs:1:"), "stopped at \(e.description)")
        }
        i.interrupt.clear()
        try i.run("print(depth(499))", name: "after")
        #expect(out() == ["499"])
    }

    @Test func stepLimitStopsRunawayScripts() throws {
        let (i, _) = try session()
        i.stepLimit = 1000
        #expect(throws: StepLimitExceeded.self) { try i.run("var k = 0\nwhile true { k += 1 }", name: "t") }
        #expect(throws: StepLimitExceeded.self) { try i.run("fn f() { while true { } }\ntry { f() } catch e { }", name: "t") }
    }
}
