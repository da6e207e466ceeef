import ArgumentParser
import Foundation
import TrickbookScript

/// `trickbook bench script`: the same small programs in trickbook's language, Lua 5.4 and
/// Python 3, run one after another in one process each, and the ratios. Each program times its
/// own measured part (so that start-up is left out) and prints the milliseconds and a checksum,
/// which must agree between the three.
struct ScriptBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "script",
        abstract: "Seven small programs in the language, in Lua 5.4 and in Python 3, with the ratios.")

    @Option(help: "Runs of each program; the fastest counts.") var runs: Int = 3
    @Option(help: "Lua, or none to skip it.") var lua: String = "lua5.4"
    @Option(help: "Python, or none to skip it.") var python: String = "python3"

    struct Program {
        let name: String, trickbook: String, lua: String, python: String
    }

    /// Each prints "MILLISECONDS CHECKSUM" for its timed part.
    static let programs: [Program] = [
        Program(
            name: "fib(30)",
            trickbook: """
                fn fib(n) { if n < 2 { return n }
                  return fib(n - 1) + fib(n - 2) }
                let t = clock()
                let r = fib(30)
                print("{(clock() - t) * 1000} {r}")
                """,
            lua: """
                local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
                local t = os.clock()
                local r = fib(30)
                print((os.clock() - t) * 1000, r)
                """,
            python: """
                import time
                def fib(n):
                    if n < 2: return n
                    return fib(n - 1) + fib(n - 2)
                t = time.perf_counter()
                r = fib(30)
                print((time.perf_counter() - t) * 1000, r)
                """),
        Program(
            name: "10M-step float loop",
            trickbook: """
                let t = clock()
                var x = 0.0
                var i = 0
                while i < 10000000 { x += 0.5; i += 1 }
                print("{(clock() - t) * 1000} {int(x)}")
                """,
            lua: """
                local t = os.clock()
                local x, i = 0.0, 0
                while i < 10000000 do x = x + 0.5; i = i + 1 end
                print((os.clock() - t) * 1000, math.floor(x))
                """,
            python: """
                import time
                t = time.perf_counter()
                x, i = 0.0, 0
                while i < 10000000:
                    x += 0.5; i += 1
                print((time.perf_counter() - t) * 1000, int(x))
                """),
        Program(
            name: "3M calls of a map-held closure",
            trickbook: """
                let o = {}
                o["step"] = fn(x) => x * 0.5 + 1.0
                let t = clock()
                var x = 0.0
                for i in 0..<3000000 { x = o.step(x) }
                print("{(clock() - t) * 1000} {int(x * 1000)}")
                """,
            lua: """
                local o = {}
                o.step = function(x) return x * 0.5 + 1.0 end
                local t = os.clock()
                local x = 0.0
                for i = 0, 3000000 - 1 do x = o.step(x) end
                print((os.clock() - t) * 1000, math.floor(x * 1000))
                """,
            python: """
                import time
                o = {"step": lambda x: x * 0.5 + 1.0}
                t = time.perf_counter()
                x = 0.0
                for i in range(3000000): x = o["step"](x)
                print((time.perf_counter() - t) * 1000, int(x * 1000))
                """),
        Program(
            name: "string building, 1M parts",
            trickbook: """
                let t = clock()
                let parts = []
                for i in 0..<1000000 { parts.append(str(i)) }
                let s = "".join(parts)
                print("{(clock() - t) * 1000} {len(s)}")
                """,
            lua: """
                local t = os.clock()
                local parts = {}
                for i = 0, 1000000 - 1 do parts[#parts + 1] = tostring(i) end
                local s = table.concat(parts)
                print((os.clock() - t) * 1000, #s)
                """,
            python: """
                import time
                t = time.perf_counter()
                parts = []
                for i in range(1000000): parts.append(str(i))
                s = "".join(parts)
                print((time.perf_counter() - t) * 1000, len(s))
                """),
        Program(
            name: "list append and index, 3M",
            trickbook: """
                let t = clock()
                let xs = []
                for i in 0..<3000000 { xs.append(i) }
                var s = 0
                for i in 0..<3000000 { s += xs[i] }
                print("{(clock() - t) * 1000} {s}")
                """,
            lua: """
                local t = os.clock()
                local xs = {}
                for i = 0, 3000000 - 1 do xs[#xs + 1] = i end
                local s = 0
                for i = 1, 3000000 do s = s + xs[i] end
                print((os.clock() - t) * 1000, s)
                """,
            python: """
                import time
                t = time.perf_counter()
                xs = []
                for i in range(3000000): xs.append(i)
                s = 0
                for i in range(3000000): s += xs[i]
                print((time.perf_counter() - t) * 1000, s)
                """),
        Program(
            name: "map set and get, 1M keys",
            trickbook: """
                let t = clock()
                let m = {}
                for i in 0..<1000000 { m[i * 7] = i }
                var s = 0
                for i in 0..<1000000 { s += m[i * 7] }
                print("{(clock() - t) * 1000} {s}")
                """,
            lua: """
                local t = os.clock()
                local m = {}
                for i = 0, 1000000 - 1 do m[i * 7] = i end
                local s = 0
                for i = 0, 1000000 - 1 do s = s + m[i * 7] end
                print((os.clock() - t) * 1000, s)
                """,
            python: """
                import time
                t = time.perf_counter()
                m = {}
                for i in range(1000000): m[i * 7] = i
                s = 0
                for i in range(1000000): s += m[i * 7]
                print((time.perf_counter() - t) * 1000, s)
                """),
        Program(
            name: "sort 1M ints",
            trickbook: """
                let xs = []
                var r = 12345
                for i in 0..<1000000 { r = (r * 1103515245 + 12345) % 2147483648; xs.append(r) }
                let t = clock()
                xs.sort()
                print("{(clock() - t) * 1000} {xs[0] + xs[500000] + xs[999999]}")
                """,
            lua: """
                local xs, r = {}, 12345
                for i = 1, 1000000 do r = (r * 1103515245 + 12345) % 2147483648; xs[i] = r end
                local t = os.clock()
                table.sort(xs)
                print((os.clock() - t) * 1000, xs[1] + xs[500001] + xs[1000000])
                """,
            python: """
                import time
                xs, r = [], 12345
                for i in range(1000000):
                    r = (r * 1103515245 + 12345) % 2147483648; xs.append(r)
                t = time.perf_counter()
                xs.sort()
                print((time.perf_counter() - t) * 1000, xs[0] + xs[500000] + xs[999999])
                """),
    ]

    func validate() throws {
        guard (1...20).contains(runs) else { throw ValidationError("--runs must be 1 to 20, got \(runs)") }
    }

    func run() throws {
        let peers = [("Lua 5.4", lua), ("Python", python)].filter { $0.1 != "none" }
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return left ? fill + s : s + fill
        }
        print(pad("program", 32) + pad("trickbook", 12, left: true)
            + peers.map { pad($0.0, 12, left: true) + pad("ratio", 9, left: true) }.joined())
        for p in Self.programs {
            let mine = try best { try Self.trickbook(p.trickbook, name: p.name) }
            var line = pad(p.name, 32) + String(format: " %8.1f ms", mine.ms)
            for (label, command) in peers {
                let source = label == "Lua 5.4" ? p.lua : p.python
                let theirs = try best { try Self.external(["/usr/bin/env", command], source: source, suffix: label == "Lua 5.4" ? "lua" : "py") }
                guard theirs.checksum == mine.checksum else {
                    throw ValidationError("\(p.name): \(label) computed \(theirs.checksum), trickbook \(mine.checksum)")
                }
                line += String(format: " %8.1f ms %7.2fx", theirs.ms, mine.ms / theirs.ms)
            }
            print(line)
        }
        print("ratio: trickbook's time over the other's (at most 1.0 is as fast or faster)")
        let l = Interpreter.layout
        print("""
            memory: a value (a register, a list's item) \(l.value) bytes; a running call \(l.callRecord) bytes \
            plus \(l.value) a register, on the VM's stack (no allocation unless the function makes closures); \
            a map's entry \(l.mapEntry.lowerBound)-\(l.mapEntry.upperBound) bytes
            """)
        let (before, after) = try Self.callsMemory()
        print(String(format: "10M calls (functions, closures made and called, map-held methods, builtins): resident memory %.1f MB before, %.1f MB after",
                     Double(before) / 1e6, Double(after) / 1e6))
    }

    /// Resident memory before and after 10M calls of every kind, in a process of its own.
    static func callsMemory() throws -> (Int, Int) {
        let source = """
            fn leaf(x) { return x + 1 }
            fn adder(k) { return fn(x) => x + k }
            let o = {"step": fn(x) => x - 1}
            let m0 = memory().rss
            var s = 0
            for i in 0..<2500000 {
              s += leaf(i)
              s += adder(i)(1)
              s += o.step(len(str(i)))
            }
            print("{m0} {memory().rss}")
            """
        let line = try lastLine(["/proc/self/exe", "run"], source: source, suffix: "tb")
        let parts = line.split(separator: " ").compactMap { Int($0) }
        guard parts.count == 2 else { throw ValidationError("the memory run printed \(line.debugDescription)") }
        return (parts[0], parts[1])
    }

    private func best(_ body: () throws -> (ms: Double, checksum: String)) throws -> (ms: Double, checksum: String) {
        var result = try body()
        for _ in 1..<runs {
            let r = try body()
            if r.ms < result.ms { result = r }
        }
        return result
    }

    /// "MS CHECKSUM" as a program printed it.
    private static func parse(_ text: String, _ what: String) throws -> (ms: Double, checksum: String) {
        let parts = text.split(whereSeparator: \.isWhitespace)
        guard parts.count == 2, let ms = Double(parts[0]) else { throw ValidationError("\(what) printed \(text.debugDescription)") }
        return (ms, String(parts[1]))
    }

    /// Runs `source` with `trickbook run` in a process of its own, as the peers run: a fresh
    /// heap each time, nothing left warm by the run before.
    static func trickbook(_ source: String, name: String) throws -> (ms: Double, checksum: String) {
        try external(["/proc/self/exe", "run"], source: source, suffix: "tb")
    }

    /// `program` (an executable and its first arguments) run on `source`: its time and checksum.
    static func external(_ program: [String], source: String, suffix: String) throws -> (ms: Double, checksum: String) {
        try parse(try lastLine(program, source: source, suffix: suffix), program.joined(separator: " "))
    }

    /// The last line `command` printed running `source` (`trickbook run` heads its output with
    /// the cell's number).
    static func lastLine(_ program: [String], source: String, suffix: String) throws -> String {
        let command = program.joined(separator: " ")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("trickbook-bench-\(getpid()).\(suffix)")
        try source.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program.first ?? "/usr/bin/env")
        process.arguments = Array(program.dropFirst()) + [file.path]
        let out = Pipe()
        process.standardOutput = out
        do { try process.run() } catch { throw ValidationError("\(command) could not be started: \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(command) failed (status \(process.terminationStatus)); install it (apt-get install lua5.4) or pass none")
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    }
}
