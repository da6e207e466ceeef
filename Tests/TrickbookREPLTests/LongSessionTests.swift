import Foundation
import Testing

/// A long session stays flat in memory: 100,000 cells that each make and drop tensors (with their
/// gradients), lists, maps, closures and reference cycles. The run's peak resident memory after
/// cell 100,000 is within a few MB of its peak after cell 10,000 (a leak of one 64×64 tensor per
/// cell would add 1.4 GB).
@Suite struct LongSessionTests {
    @Test func aHundredThousandCellsStayFlat() throws {
        let path = NSTemporaryDirectory() + "tb-long-\(getpid()).tb"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var text = """
        # %% setup
        fn churn(k) {
          var t = randn([64, 64])
          t.requires_grad = true
          let loss = (t * t).sum()
          loss.backward()
          var a = [k, "x" * 10, t]
          a.append(a)
          var m = {"k": k, "t": t}
          m["m"] = m
          fn f(n) { return n == 0 ? 0 : f(n - 1) }
          f(3)
          return fn(x) => x + k
        }
        var early = 0

        """
        for k in 0..<100_000 {
            text += "# %%\nlet g = churn(\(k))\n"
            if k == 10_000 { text += "early = memory().peak\n" }
        }
        text += "# %%\nprint(\"grew\", floor((memory().peak - early) / 1048576), g(1))\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let (status, out, err) = try Binary.run(["run", path])
        #expect(status == 0, "\(err)")
        let last = out.split(separator: "\n").last.map(String.init) ?? ""
        let parts = last.split(separator: " ")
        #expect(parts.count == 3 && parts[0] == "grew" && parts[2] == "100000", "\(last)")
        let grew = parts.count == 3 ? Int(parts[1]) : nil
        #expect(grew.map { $0 < 16 } == true, "the peak grew by \(grew ?? -1) MB from cell 10,000 to 100,000")
    }
}
