import Foundation
import Testing
@testable import TrickbookREPL
import TrickbookScript

/// `trickbook run FILE --set name=value`: each value parsed as the language would write it, read
/// with param(name, default), bad pairs refused, and the names never read reported.
@Suite struct ParameterTests {
    @Test func parsedAndRead() throws {
        let given = try Parameters.parse(["hold_out=5000", "rate=0.2", "fast=true", "name=run 2", "off=nil", "eq=a=b"])
        let s = Session(stdlib: [], quick: true, seed: 1) { _ in }
        var out: [String] = []
        s.output = { out.append($0) }
        s.interp.parameters = given
        #expect(s.evaluate(#"""
            print(param("hold_out", 0), param("rate", 0.1), param("fast", false), param("name"), param("off", 3), param("eq"), param("absent", 7))
            print(type(param("hold_out")), type(param("rate")))
            """#, name: "cell"))
        #expect(out == ["5000 0.2 true run 2 nil a=b 7", "int float"])
        #expect(Parameters.unread(in: s.interp).isEmpty)
        s.interp.parameters["epoch"] = .int(3)
        #expect(Parameters.unread(in: s.interp) == [#"warning: --set epoch: the notebook never read it with param("epoch", ...)"#])
    }

    @Test(arguments: [("epochs", "--set epochs: expected name=value"), ("=3", "'' is not a name"), ("2x=1", "'2x' is not a name"),
                      ("a-b=1", "'a-b' is not a name")])
    func badPairs(pair: String, message: String) {
        #expect(throws: Parameters.Failure.self) { try Parameters.parse([pair]) }
        do { _ = try Parameters.parse([pair]) } catch { #expect("\(error)".contains(message), "\(error)") }
    }
}
