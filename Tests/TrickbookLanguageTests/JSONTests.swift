import Foundation
import Testing
@testable import TrickbookScript

/// JSON both ways: values round-trip (floats to the bit), the text is what Python's json module
/// reads, and bad text or values are errors that say what and where, with no recursion.
@Suite struct JSONTests {
    func value(_ source: String) throws -> Value {
        let i = Interpreter()
        guard let v = try i.run(source, name: "v") else { throw ScriptError("no value") }
        return v
    }

    @Test func roundTrip() throws {
        let v = try value("""
            {"name": "baseline", "top1": [0.9121, 0.1 + 0.2, 1e-300, -2.5e17, 3.0], "n": -42, "ok": true,
             "none": nil, "nested": {"a": [[], {}, [1, [2, [3]]]]}, "text": "tab\\t quote\\" back\\\\ é \\n"}
            """)
        let text = try JSON.encode(v)
        let back = try JSON.decode(text, name: "t.json")
        #expect(valuesEqual(v, back))
        #expect(try JSON.encode(back) == text)
        // Floats stay floats (1.0 is not read back as the int 1), and keep every bit.
        guard case .map(let m) = back, case .list(let l)? = try m.get(.string("top1")) else { Issue.record("shape"); return }
        guard case .float(let third) = l.items[1], case .float(let whole) = l.items[4] else { Issue.record("floats"); return }
        #expect(third == 0.1 + 0.2)
        #expect(whole == 3.0)
    }

    @Test func textByHand() throws {
        let v = try value(#"{"row": "a", "top1": [0.5, 1.0], "runs": [{"s": 1}], "e": {}}"#)
        #expect(try JSON.encode(v) == """
            {
              "row": "a",
              "top1": [0.5, 1.0],
              "runs": [
                {"s": 1}
              ],
              "e": {}
            }
            """)
        #expect(try JSON.encode(.float(.nan)) == "NaN")
        #expect(try JSON.encode(.float(-.infinity)) == "-Infinity")
        #expect(try JSON.encode(.string("\u{1}")) == #""\u0001""#)
    }

    @Test func readsWhatOthersWrite() throws {
        let v = try JSON.decode(#" [1, -0.5e2, "\u00e9\ud83d\ude00", null, false, NaN, -Infinity, {"k": "v", "k": "w"}] "#, name: "x.json")
        guard case .list(let l) = v else { Issue.record("not a list"); return }
        #expect(l.items[0].repr == "1")
        #expect(l.items[1].repr == "-50.0")
        #expect(l.items[2].str == "é😀")
        if case .float(let d) = l.items[5] { #expect(d.isNaN) } else { Issue.record("NaN") }
        #expect(l.items[7].repr == #"{"k": "w"}"#)  // the last of a repeated key, as Python keeps it
    }

    @Test(arguments: [
        ("[1, 2", "x.json:1:6: expected ',' or ']' in a list"),
        ("{\"a\" 1}", "x.json:1:6: expected ':' after the key \"a\""),
        ("{\"a\": 1,\n  2}", "x.json:2:3: expected a string key in an object"),
        ("[1] 2", "x.json:1:5: unexpected text after the value"),
        ("\"abc", "x.json:1:5: a string is not closed"),
        ("[1x]", "x.json:1:3: expected ',' or ']' in a list"),
        ("99999999999999999999", "x.json:1:1: the integer 99999999999999999999 does not fit in 64 bits"),
        ("[1.]", "x.json:1:4: expected digits after '.' in a number"),
        ("\"\\q\"", "x.json:1:2: unknown escape '\\q' in a string"),
        ("\"\\ud800\"", "a lone surrogate"),
        ("tru", "x.json:1:1: expected a value"),
        ("", "x.json:1:1: expected a value, found the end of the text"),
        (String(repeating: "[", count: 20_000), "nested more than 10000 deep"),
    ])
    func badTextIsLocated(text: String, message: String) {
        do {
            _ = try JSON.decode(text, name: "x.json")
            Issue.record("no error for \(text.prefix(30))")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test func valuesJSONCannotHold() throws {
        let cases: [(String, String)] = [
            ("let l = [1]\nl.append(l)\nl", "a list or map contains itself (at [1])"),
            ("{\"f\": fn(x) => x}", "a function cannot be written as JSON (at [\"f\"])"),
            ("{1: 2}", "the map key 1 is not a string"),
            ("[0..<3]", "a range cannot be written as JSON (at [0])"),
        ]
        for (source, message) in cases {
            do {
                _ = try JSON.encode(try value(source))
                Issue.record("no error for \(source)")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
        }
    }

    /// A list nested 100,000 deep is built in a loop: writing it is an error, not a stack overflow,
    /// and 5,000 deep writes and reads back.
    @Test func deepValuesWithoutRecursion() throws {
        let deep = try value("var l = []\nfor i in range(100000) { l = [l] }\nl")
        #expect(throws: JSON.Failure.self) { try JSON.encode(deep) }
        let ok = try value("var l = []\nfor i in range(5000) { l = [l] }\nl")
        let text = try JSON.encode(ok)
        #expect(valuesEqual(try JSON.decode(text, name: "d.json"), ok))
    }
}
