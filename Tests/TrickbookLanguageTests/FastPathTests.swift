import Testing
@testable import TrickbookScript

/// Builtins with a one-value fast path give, for every value it handles, what their body gives.
@Suite struct FastPathTests {
    @Test func fastPathsAgreeWithTheirBodies() throws {
        let i = Interpreter()
        let samples: [Value] = [
            .nil_, .bool(true), .int(0), .int(-7), .int(Int.max), .float(2.25), .float(-0.0), .float(.nan), .float(.infinity),
            .string(""), .string("héllo"), .list(ListRef([.int(1), .string("a")])), .map(MapRef()), .range(1, 5, inclusive: false),
        ]
        let fast = i.builtins.filter { $0.fast != nil }
        #expect(Set(fast.map(\.name)).isSuperset(of: ["str", "repr", "type", "len", "sqrt", "exp", "log", "cos", "sin"]))
        for b in fast {
            for v in samples {
                guard let quick = b.fast?(v) else { continue }
                let full = try b.body(try b.bind([v], [], in: i))
                #expect(quick.typeName == full.typeName && quick.repr == full.repr, "\(b.name)(\(v.repr)): \(quick.repr) vs \(full.repr)")
            }
        }
        // And through the VM: a compiled call of each takes the fast path, an error the body's.
        try i.run("fn f(x) { return [str(x), len(x), type(x)] }\nlet r = f([1, 2])", name: "cell")
        #expect(i.global("r")?.repr == "[\"[1, 2]\", 2, \"list\"]")
        #expect(throws: ScriptError.self) { try i.run("fn g(x) { return len(x) }\ng(3)", name: "cell2") }
    }
}
