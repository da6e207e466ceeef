import Foundation
import TrickbookBindings
import TrickbookData
import TrickbookScript

// One input is one file, read by each reader: IDX, CIFAR,
// PNG (as an image folder), safetensors (as model weights), a training checkpoint and JSON (read,
// written back and read again). Each may refuse the file with an error naming it; none may crash.

private let dir = NSTemporaryDirectory() + "trickbook-fuzz-files-\(getpid())"

private let session: Interpreter = {
    for sub in ["png/a", "idx"] { try? FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
    #if !FUZZ_ASAN  // AddressSanitizer reserves terabytes of address space: run.sh uses a cgroup instead
    var limit = rlimit(rlim_cur: 6 << 30, rlim_max: 6 << 30)
    setrlimit(Int32(RLIMIT_AS.rawValue), &limit)
    #endif
    let i = Interpreter()
    i.output = { _ in }
    Bindings.register(into: i)
    _ = try? i.run("""
    let model = sequential([linear(4, 3, seed: 1), relu(), linear(3, 2, seed: 2)])
    let opt = sgd(model, 0.1, ema: 0.9)
    """, name: "setup")
    return i
}()

func fuzzFiles(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Data(bytes: data, count: count)
    let i = session
    for path in ["f.bin", "png/a/x.png", "f.safetensors", "idx/f.idx", "f.json"] { try? bytes.write(to: URL(fileURLWithPath: dir + "/" + path)) }
    _ = try? IDX.read(dir + "/idx/f.idx")
    for script in [
        "cifar(\"\(dir)/f.bin\")[0]",
        "image_folder(\"\(dir)/png\")[0]",
        "model.load(\"\(dir)/f.safetensors\")",
        "load_checkpoint(\"\(dir)/f.safetensors\", opt)",
        "save_json(load_json(\"\(dir)/f.json\"), \"\(dir)/g.json\")\nload_json(\"\(dir)/g.json\")",
    ] {
        _ = try? i.run(script, name: "fuzz")
    }
    return 0
}
