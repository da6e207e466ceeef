import ArgumentParser
import CEdit
import CPNG
import CZlib
import Foundation
import TrickbookMPI
import TrickbookTensor

/// `trickbook doctor`: what this machine gives trickbook (BLAS kernels, oneDNN, threads, libraries, data).
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the BLAS kernels, oneDNN, threads, MPI, libraries and data trickbook will use.")

    func run() throws {
        let blas = BLAS.status
        print("threads        \(Threads.count)  (TRICKBOOK_THREADS overrides)")
        print("BLAS library   \(blas.library ?? "none")")
        print("BLAS kernels   \(blas.core): \(blas.how)")
        if OneDNN.available {
            let use = OneDNN.enabledByDefault ? "convolutions" : "off (TRICKBOOK_ONEDNN=0): trickbook's own kernels"
            print("oneDNN         \(OneDNN.isa): \(use)")
        } else {
            print("oneDNN         none (\(OneDNN.loadError)): convolutions on trickbook's own kernels")
        }
        print("BF16           \(OneDNN.hasBF16 ? "in hardware (\(OneDNN.isa))" : "simulated: rounded to BF16 around FP32 arithmetic")")
        print("MPI            \(MPI.status)")
        print("libpng         \(String(cString: png_get_libpng_ver(nil)))")
        print("zlib           \(String(cString: zlibVersion()))")
        print("libedit        \(LIBEDIT_MAJOR).\(LIBEDIT_MINOR)")
        let data = ProcessInfo.processInfo.environment["TRICKBOOK_DATA"] ?? "/usr/share/datasets/fashion-mnist"
        let found = FileManager.default.fileExists(atPath: data + "/train-images-idx3-ubyte.gz")
        print("Fashion-MNIST  \(data)  \(found ? "found" : "missing: apt-get install dataset-fashion-mnist")")
    }
}
