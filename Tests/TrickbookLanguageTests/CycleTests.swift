import Testing
@testable import TrickbookScript

/// Reference cycles are freed between cells, and nothing live is touched.
@Suite struct CycleTests {
    @Test func cyclesAreFreedAndLiveDataKept() throws {
        let i = Interpreter()
        var out: [String] = []
        i.output = { out.append($0) }
        try i.run("""
        let keep = [1]
        keep.append(keep)
        let m = {"name": "m"}
        m["self"] = m
        fn counter() {
          var n = 0
          fn step() { n += 1; return n }
          return step
        }
        let tick = counter()
        tick()
        fn churn(k) {
          for j in range(k) {
            var a = [j]
            a.append(a)
            var d = {}
            d["d"] = d
            fn again(n) { return n == 0 ? 0 : again(n - 1) }
            again(2)
          }
        }
        churn(2000)
        """, name: "t")
        let before = CycleCollector.count(owner: i.gcOwner)
        try i.run("print(gc() >= 4000)", name: "t")
        let after = CycleCollector.count(owner: i.gcOwner)
        try i.run("print(keep[0], keep[1][1][0], m[\"self\"][\"name\"], tick(), tick())", name: "t")
        #expect(out == ["true", "1 1 m 2 3"], "\(out)")
        #expect(before >= 4000 && before < 10_000 && after < 100, "\(before) tracked before, \(after) after")
    }

    /// Copies share their array buffer (copy-on-write): an element held once by a shared buffer
    /// and once by a global is live, and stays.
    @Test func sharedBuffersDoNotHideLiveObjects() throws {
        let i = Interpreter()
        var out: [String] = []
        i.output = { out.append($0) }
        try i.run("""
        let e = []
        fn f() {
          let a = [e]
          let b = a.copy()
          e.append(a)
          e.append(b)
        }
        f()
        let m = {"k": []}
        fn g() {
          let c = m.copy()
          m["c"] = c
        }
        g()
        gc()
        print(len(e), len(e[0]), len(m), len(m["c"]))
        """, name: "t")
        #expect(out == ["2 1 2 1"], "\(out)")
    }

    /// A long session: 20,000 cells that make and drop lists, maps, closures and cycles. What
    /// the collector tracks stays bounded (it runs by itself when the count doubles).
    @Test func aLongSessionStaysFlat() throws {
        let i = Interpreter()
        i.output = { _ in }
        var peak = 0
        for k in 0..<20_000 {
            try i.run("""
            var a = [\(k), "x" * 10]
            a.append(a)
            var m = {"k": \(k)}
            m["m"] = m
            fn f(n) { return n == 0 ? 0 : f(n - 1) }
            f(3)
            let g = fn(x) => x + \(k)
            """, name: "cell")
            peak = max(peak, CycleCollector.count(owner: i.gcOwner))
        }
        #expect(peak < 40_000, "the collector let \(peak) objects pile up")
    }
}
