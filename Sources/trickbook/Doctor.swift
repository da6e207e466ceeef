import ArgumentParser
import CEdit
import CPNG
import CZlib
import Foundation
import TrickbookTensor

/// `trickbook doctor`: what this machine gives trickbook (BLAS kernels, threads, libraries, data).
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the BLAS kernels, threads, libraries and data trickbook will use.")

    func run() throws {
        let blas = BLAS.status
        print("threads        \(Threads.count)  (TRICKBOOK_THREADS overrides)")
        print("BLAS library   \(blas.library ?? "none")")
        print("BLAS kernels   \(blas.core): \(blas.how)")
        print("libpng         \(String(cString: png_get_libpng_ver(nil)))")
        print("zlib           \(String(cString: zlibVersion()))")
        print("libedit        \(LIBEDIT_MAJOR).\(LIBEDIT_MINOR)")
        let data = ProcessInfo.processInfo.environment["TRICKBOOK_DATA"] ?? "/usr/share/datasets/fashion-mnist"
        let found = FileManager.default.fileExists(atPath: data + "/train-images-idx3-ubyte.gz")
        print("Fashion-MNIST  \(data)  \(found ? "found" : "missing: apt-get install dataset-fashion-mnist")")
    }
}
