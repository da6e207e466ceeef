import Foundation
import TrickbookBindings
import TrickbookScript

// One input is one script, run with the bindings in a fresh session under a step limit, in a
// scratch folder. It may fail with an error; it must not crash, hang or exhaust memory.

private let setup: Void = {
    // Files the script writes stay in a scratch folder; large allocations meet the memory guard
    // (which reads RLIMIT_AS) long before libFuzzer's RSS limit.
    let dir = NSTemporaryDirectory() + "trickbook-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    FileManager.default.changeCurrentDirectoryPath(dir)
    #if !FUZZ_ASAN  // AddressSanitizer reserves terabytes of address space: run.sh uses a cgroup instead
    var limit = rlimit(rlim_cur: 6 << 30, rlim_max: 6 << 30)
    setrlimit(Int32(RLIMIT_AS.rawValue), &limit)
    #endif
}()

func fuzzScript(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    _ = setup
    let source = String(decoding: UnsafeBufferPointer(start: data, count: count), as: UTF8.self)
    let i = Interpreter()
    i.output = { _ in }
    i.stepLimit = 20_000
    i.define("quick", .bool(true))
    i.define("seed", .int(0))
    Bindings.register(into: i)
    _ = try? i.run(source, name: "fuzz")
    return 0
}
