import Foundation
import Testing
@testable import TrickbookREPL
import TrickbookScript

final class Captured: @unchecked Sendable { var out: [String] = []; var err: [String] = [] }

func makeREPL() -> (REPL, Captured) {
    let cap = Captured()
    let repl = REPL {
        let s = Session(stdlib: [], quick: true, seed: 1) { _ in }
        s.output = { cap.out.append($0) }
        s.errorOutput = { cap.err.append($0) }
        return s
    }
    return (repl, cap)
}

@Suite struct REPLCommandTests {
    @Test func notebookCommands() throws {
        let (repl, cap) = makeREPL()
        #expect(repl.command(":load \(Binary.notebooks)/sample.tb"))
        #expect(cap.out.contains { $0.contains("4 cells") } && cap.out.contains { $0.hasPrefix("> [1]") })
        cap.out = []
        #expect(repl.command(":next"))
        #expect(repl.command(":run 3"))
        #expect(cap.out.contains("n = 3") && cap.out.contains("6"))
        cap.out = []
        #expect(repl.command(":cells"))
        #expect(cap.out.contains { $0.hasPrefix("> [4]") })
        #expect(repl.command(":show 4"))
        #expect(cap.out.last?.contains("print(greeting, seed)") == true)
        #expect(repl.command(":vars"))
        let vars = (cap.out.last ?? "").components(separatedBy: "\n")
        #expect(vars.contains("greeting: string = \"hello\"") && vars.contains("n: int = 3"))
        #expect(repl.command(":run 9") && cap.err.last?.contains("cell 9 does not exist") == true)
        #expect(repl.command(":time sum(range(1000))"))
        #expect(cap.out.contains("499500") && cap.out.last?.hasPrefix("time: ") == true)
        #expect(repl.command(":reset"))
        cap.out = []
        #expect(repl.command(":vars") && cap.out == ["quick: bool = true\nseed: int = 1"])
        #expect(repl.command(":bogus") && cap.err.last?.contains("unknown command ':bogus'") == true)
        #expect(repl.command(":help") && cap.out.last?.contains(":next") == true)
        #expect(repl.command(":help range") && cap.out.last?.hasPrefix("range(start") == true)
        // A method through its receiver, with its example.
        _ = repl.runPiped("let words = [\"a\"]")
        #expect(repl.command(":help words.append") && cap.out.last?.hasPrefix("append(item)") == true && cap.out.last?.contains("example: ") == true)
        #expect(repl.command(":help nope.append") && cap.err.last?.contains("unknown name 'nope.append'") == true)
        #expect(!repl.command(":quit"))
    }

    @Test func saveWritesWhatWasTypedAsANotebook() throws {
        let (repl, _) = makeREPL()
        _ = repl.runPiped("")  // nothing typed yet
        let path = NSTemporaryDirectory() + "saved-\(UUID().uuidString).tb"
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(repl.command(":time let k = 2"))
        #expect(repl.command(":save \(path)"))
        let nb = try Notebook.load(path)
        #expect(nb.cells.count == 1 && nb.cells[0].source.contains("let k = 2"))
    }

    @Test func completionOfNamesMembersAndKeywords() throws {
        let (repl, _) = makeREPL()
        _ = repl.command(":time fn resnet(depth, variant = \"a\") { return depth }")
        _ = repl.command(":time let losses = [1]")
        #expect(repl.completions("resnet(dep") == ["depth:"])
        #expect(repl.completions("resnet(50, var").first == "variant:")
        #expect(repl.completions("los") == ["losses"])
        #expect(repl.completions("losses.ap") == ["append"])
        #expect(repl.completions("wh") == ["while"])
    }
}

/// A cell shows the value of every bare expression at its top level, in order, interleaved with
/// what it prints; nil shows nothing, and one inside a loop or an `if` is not shown. The same
/// when the cell runs compiled and as a tree.
@Test(arguments: [true, false]) func everyBareExpressionIsShown(compiled: Bool) throws {
    let cap = Captured()
    let s = Session(stdlib: [], quick: true, seed: 1) { _ in }
    s.interp.compilesFunctions = compiled
    s.output = { cap.out.append($0) }
    #expect(s.evaluate("let a = 2\na\nprint(\"between\")\na * 3\nnil\nfor i in 0..<2 { i + 10 }\nif true { 99 }\n[a, a]", name: "cell"))
    #expect(cap.out == ["2", "between", "6", "[2, 2]"])
    // The value is still the run's last value, and an embedding without a session echoes nothing.
    cap.out = []
    #expect(try s.interp.run("5\n6", name: "plain")?.repr == "6")
    #expect(cap.out.isEmpty)
}
