import ArgumentParser
import Foundation
import TrickbookTensor

/// `trickbook bench …`: speed measurements. Build with `-c release` before quoting numbers.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the engine's speed (use a release build).",
        subcommands: [GemmBench.self, ConvBench.self])
}

/// Runs `body` until `seconds` have passed (at least `minRuns` times) after one warm-up; returns
/// the median time per run.
func measure(seconds: Double = 1.0, minRuns: Int = 3, _ body: () throws -> Void) rethrows -> Double {
    try body()
    var times: [Double] = []
    let start = Date()
    while times.count < minRuns || Date().timeIntervalSince(start) < seconds {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    return times.sorted()[times.count / 2]
}

func header() {
    let s = BLAS.status
    print("BLAS: \(s.core) (\(s.how)); threads: \(s.threads)")
}

struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm", abstract: "sgemm GFLOP/s for square matrices.")
    @Option(help: "Matrix sizes.") var sizes: [Int] = [256, 512, 1024, 2048]

    func run() throws {
        header()
        for n in sizes {
            let gflops = try sgemmGFLOPs(m: n, n: n, k: n)
            print(String(format: "sgemm %5d x %5d x %5d  %7.1f GFLOP/s", n, n, n, gflops))
        }
    }
}

func sgemmGFLOPs(m: Int, n: Int, k: Int, seconds: Double = 1) throws -> Double {
    let a = try Tensor.rand([m, k]), b = try Tensor.rand([k, n])
    let t = try measure(seconds: seconds) { _ = try a.matmul(b) }
    return 2 * Double(m * n * k) / t / 1e9
}

struct ConvBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "conv", abstract: "conv2d forward and forward+backward GFLOP/s on ResNet layer shapes.")
    @Option(help: "Which shapes: resnet20, resnet50 or all.") var model: String = "all"
    @Option(help: "Only layers whose name contains this text.") var layer: String?

    struct Layer { let name: String; let batch, cin, size, cout, k, stride: Int }

    static let resnet20: [Layer] = [
        Layer(name: "stem 1→16 3x3 @28", batch: 128, cin: 1, size: 28, cout: 16, k: 3, stride: 1),
        Layer(name: "16→16 3x3 @28", batch: 128, cin: 16, size: 28, cout: 16, k: 3, stride: 1),
        Layer(name: "16→32 3x3 /2 @28", batch: 128, cin: 16, size: 28, cout: 32, k: 3, stride: 2),
        Layer(name: "16→32 1x1 /2 @28", batch: 128, cin: 16, size: 28, cout: 32, k: 1, stride: 2),
        Layer(name: "32→32 3x3 @14", batch: 128, cin: 32, size: 14, cout: 32, k: 3, stride: 1),
        Layer(name: "32→64 3x3 /2 @14", batch: 128, cin: 32, size: 14, cout: 64, k: 3, stride: 2),
        Layer(name: "64→64 3x3 @7", batch: 128, cin: 64, size: 7, cout: 64, k: 3, stride: 1),
    ]
    static let resnet50: [Layer] = [
        Layer(name: "stem 3→64 7x7 /2 @224", batch: 16, cin: 3, size: 224, cout: 64, k: 7, stride: 2),
        Layer(name: "64→64 1x1 @56", batch: 16, cin: 64, size: 56, cout: 64, k: 1, stride: 1),
        Layer(name: "64→64 3x3 @56", batch: 16, cin: 64, size: 56, cout: 64, k: 3, stride: 1),
        Layer(name: "64→256 1x1 @56", batch: 16, cin: 64, size: 56, cout: 256, k: 1, stride: 1),
        Layer(name: "128→128 3x3 /2 @56", batch: 16, cin: 128, size: 56, cout: 128, k: 3, stride: 2),
        Layer(name: "128→512 1x1 @28", batch: 16, cin: 128, size: 28, cout: 512, k: 1, stride: 1),
        Layer(name: "256→256 3x3 @14", batch: 16, cin: 256, size: 14, cout: 256, k: 3, stride: 1),
        Layer(name: "1024→256 1x1 @14", batch: 16, cin: 1024, size: 14, cout: 256, k: 1, stride: 1),
        Layer(name: "512→512 3x3 @7", batch: 16, cin: 512, size: 7, cout: 512, k: 3, stride: 1),
        Layer(name: "512→2048 1x1 @7", batch: 16, cin: 512, size: 7, cout: 2048, k: 1, stride: 1),
    ]

    func run() throws {
        let sets: [(String, [Layer])]
        switch model {
        case "resnet20": sets = [("ResNet-20, batch 128, 28x28", Self.resnet20)]
        case "resnet50": sets = [("ResNet-50, batch 16, 224x224", Self.resnet50)]
        case "all": sets = [("ResNet-20, batch 128, 28x28", Self.resnet20), ("ResNet-50, batch 16, 224x224", Self.resnet50)]
        default: throw ValidationError("--model must be resnet20, resnet50 or all, got \(model)")
        }
        header()
        // This machine's speed drifts between runs: take the better of two sizes as the reference.
        let reference = max(try sgemmGFLOPs(m: 1024, n: 1024, k: 1024, seconds: 2), try sgemmGFLOPs(m: 2048, n: 2048, k: 2048, seconds: 2))
        print(String(format: "reference sgemm (best of 1024^3 and 2048^3): %.1f GFLOP/s\n", reference))
        for (title, layers) in sets {
            print(title)
            print("  layer                        fwd GFLOP/s  fwd+bwd GFLOP/s  fwd+bwd / sgemm")
            var flopsTotal = 0.0, timeTotal = 0.0
            for l in layers where layer.map({ l.name.contains($0) }) ?? true {
                let x = try Tensor.randn([l.batch, l.cin, l.size, l.size])
                x.requiresGrad = true
                let w = try Tensor.randn([l.cout, l.cin, l.k, l.k])
                w.requiresGrad = true
                let pad = l.k / 2
                let forward = try measure(seconds: 2) { _ = try withNoGrad { try x.conv2d(weight: w, stride: (l.stride, l.stride), padding: (pad, pad)) } }
                var macs = 0
                let both = try measure(seconds: 2) {
                    let y = try x.conv2d(weight: w, stride: (l.stride, l.stride), padding: (pad, pad))
                    macs = l.batch * l.cout * y.shape[2] * y.shape[3] * l.cin * l.k * l.k
                    try y.backward(Tensor.full(y.shape, value: 1))
                    x.zeroGrad(); w.zeroGrad()
                }
                let fwd = 2 * Double(macs) / forward / 1e9, fb = 6 * Double(macs) / both / 1e9
                flopsTotal += 6 * Double(macs); timeTotal += both
                print("  " + l.name.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: " %11.1f  %15.1f  %14.0f%%", fwd, fb, 100 * fb / reference))
            }
            let overall = flopsTotal / timeTotal / 1e9
            print(String(format: "  all layers (FLOP-weighted)   %27.1f  %14.0f%%\n", overall, 100 * overall / reference))
        }
    }
}
