import Foundation
import Testing
import TrickbookBindings
@testable import TrickbookScript

/// The ablation runner: rows from a base and steps, statistics worked out by hand, and a study
/// kept in a JSON file that a killed run resumes from without training a finished run again.
@Suite struct StudyTests {
    func directory() throws -> String {
        let dir = NSTemporaryDirectory() + "study-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func jsonFilesFromTheLanguage() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (i, out) = session()
        try i.run("""
            let path = "\(dir)/r.json"
            print(exists(path))
            save_json({"top1": [0.9, 1.0 / 3], "name": "baseline"}, path)
            let back = load_json(path)
            print(exists(path), back.top1[1] == 1.0 / 3, back.name, type(back.top1[0]))
            """, name: "cell")
        #expect(out.all == ["false", "true true baseline float"])
        // Written through a temporary name: nothing else is left in the directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["r.json"])
        try expectError(i, "load_json(\"\(dir)/none.json\")", "cannot read \(dir)/none.json: no such file")
        try expectError(i, "load_json(\"\(dir)\")", "cannot read \(dir): it is a directory")
        try "{\"a\": [1, 2,]}".write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        try expectError(i, "load_json(\"\(dir)/bad.json\")", "\(dir)/bad.json:1:13: expected a value")
        try expectError(i, "save_json({\"f\": print}, \"\(dir)/f.json\")", "a function cannot be written as JSON (at [\"f\"])")
        #expect(!FileManager.default.fileExists(atPath: dir + "/f.json"))
    }

    @Test func rowsAndStatisticsByHand() throws {
        let (i, out) = session()
        try i.run("""
            import "ablation"
            let base = {"a": 0, "b": 0}
            let steps = [["+ a", {"a": 1}], ["+ b", {"b": 2}]]
            print(cumulative(base, steps))
            print(each_alone(base, steps))
            # top-1 = 0.5 + a / 10 + b / 100 + seed / 1000: each row's spread is that of the seeds
            let r = study(cumulative(base, steps), [0, 2], fn(c, s) => 0.5 + c.a / 10 + c.b / 100 + s / 1000)
            print("stats", r[0].mean, r[0].std, r[1].delta, r[1].se, r[1].noise)
            let e = study(each_alone(base, steps), [0, 2], fn(c, s) => 0.5 + c.a / 10 + c.b / 100 + s / 1000, against: "first")
            print(e[2].delta)
            """, name: "cell")
        #expect(out.all.contains(#"[["baseline", {"a": 0, "b": 0}], ["+ a", {"a": 1, "b": 0}], ["+ b", {"a": 1, "b": 2}]]"#))
        #expect(out.all.contains(#"[["baseline", {"a": 0, "b": 0}], ["+ a", {"a": 1, "b": 0}], ["+ b", {"a": 0, "b": 2}]]"#))
        // mean 0.501, std of [0.500, 0.502] = sqrt(2 * 0.001^2) = 0.0014142; the change 0.1 with a
        // standard error sqrt(2 * 0.0014142^2 / 2) = 0.0014142, far outside the noise.
        let line = try #require(out.all.first { $0.hasPrefix("stats ") })
        let stats = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        try #require(stats.count == 4 && line.hasSuffix(" false"), "\(line)")  // four numbers, then noise: false
        #expect(abs(stats[0] - 0.501) < 1e-12)
        #expect(abs(stats[1] - 0.0014142) < 1e-6)
        #expect(abs(stats[2] - 0.1) < 1e-12)
        #expect(abs(stats[3] - 0.0014142) < 1e-6)
        let last = try #require(out.all.last)
        #expect(abs((Double(last) ?? 0) - 0.02) < 1e-12, "\(last)")
    }

    /// A study whose third run fails (a run killed) keeps the two that ended; run again, it trains
    /// only what is missing; the table of each trick alone reuses the cumulative table's runs.
    @Test func resumesWhereItStopped() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (i, out) = session()
        try i.run("""
            import "ablation"
            let file = "\(dir)/runs.json"
            let base = {"lr": 0.5, "zg": false}
            let steps = [["+ zg", {"zg": true}], ["+ low lr", {"lr": 0.25}]]
            var calls = 0
            var fail_at = 3
            fn run(c, s) {
              calls += 1
              assert calls != fail_at, "killed"
              return {"top1": c.lr + (c.zg ? 0.125 : 0.0) + s / 64, "loss": [1.0, 0.5]}
            }
            """, name: "cell")
        try expectError(i, "study(cumulative(base, steps), [1, 2], run, file: file)", "killed")
        try i.run("""
            print("kept", len(keys(load_json(file))))
            fail_at = -1
            calls = 0
            let r = study(cumulative(base, steps), [1, 2], run, file: file, to: "\(dir)/table.md")
            print("second", calls, r[1].runs[0].loss, r[2].top1)
            calls = 0
            let again = study(cumulative(base, steps), [1, 2], run, file: file)
            print("third", calls)
            let alone = study(each_alone(base, steps), [1, 2], run, file: file, against: "first")
            print("alone", calls, alone[2].top1)
            """, name: "cell")
        #expect(out.all.contains("kept 2"))  // the two runs that ended before the failure
        #expect(out.all.contains("second 4 [1.0, 0.5] [0.390625, 0.40625]"))  // 6 runs, 2 read back
        #expect(out.all.contains("third 0"))  // nothing to train again
        #expect(out.all.contains("alone 2 [0.265625, 0.28125]"))  // only "+ low lr" alone is new
        let table = try String(contentsOfFile: dir + "/table.md", encoding: .utf8)
        // Each row's seeds differ by 1/64: std (1/64)/sqrt(2) = 0.0110, and so is the change's SE.
        #expect(table.contains("| + low lr") && table.contains("-25.00 ± 1.10"), "\(table)")
    }
}
