import Foundation
import TrickbookScript
import TrickbookTensor

/// What the machine gives a run, as `trickbook doctor` prints it, for a notebook to record beside
/// its results (which kernels and precision a timing was measured with).
enum MachineLibrary: Library {
    static let rows: [Row] = [
        Row(
            "machine()",
            doc: """
                The machine a run uses: {threads, cores, blas, blas_kernels, convolutions (\"oneDNN (isa)\" or \
                trickbook's own), bf16 (true when BF16 convolutions run in hardware)}.
                """,
            example: "print(machine().convolutions)"
        ) { _ in
            let m = MapRef()
            let blas = BLAS.status
            try m.set(.string("threads"), .int(Threads.count))
            try m.set(.string("cores"), .int(ProcessInfo.processInfo.activeProcessorCount))
            try m.set(.string("blas"), .string(blas.library ?? "none"))
            try m.set(.string("blas_kernels"), .string(blas.core))
            try m.set(.string("convolutions"), .string(OneDNN.enabled ? "oneDNN (\(OneDNN.isa))" : "trickbook's own"))
            try m.set(.string("bf16"), .bool(OneDNN.bf16InHardware))
            return .map(m)
        }
    ]
    static let types: [HostType] = []
}
