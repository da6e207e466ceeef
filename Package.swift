// swift-tools-version:6.0
// trickbook: a notebook-style environment for the "Bag of Tricks" paper.
//
// Dependencies point one way:
//   system libraries / C shims  ->  TrickbookTensor  ->  models, data  ->  training
//   CMPI (MPI, opened at run time)  ->  TrickbookMPI  ->  training (data parallelism)
//   display (charts, tables), language                   (each on its own)
//   all of the above  ->  bindings  ->  trickbook; the REPL sits on the language only,
//   the notebook page and reports on the REPL's session
import PackageDescription

/// The numeric targets are optimized in debug builds too: the tests build whole ResNets and run
/// gradient checks, which unoptimized code makes 10–50 times slower.
let optimizedInDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "trickbook",
    products: [
        .executable(name: "trickbook", targets: ["trickbook"]),
        .library(name: "TrickbookTensor", targets: ["TrickbookTensor"]),
        // For the fuzzers in Fuzz/, which build the language and its bindings with libFuzzer.
        .library(name: "TrickbookBindings", targets: ["TrickbookBindings", "TrickbookScript", "TrickbookData"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        // The notebook page's HTTP and WebSocket server (no SwiftNIO: a small socket layer of its own).
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
        // Markdown cells rendered to HTML.
        .package(url: "https://github.com/JohnSundell/Ink", from: "0.6.0"),
    ],
    targets: [
        // MARK: System libraries and C shims
        // OpenBLAS is not linked: CShims opens it at first use, after choosing OPENBLAS_CORETYPE,
        // because OpenBLAS reads that variable only when it loads.
        .target(name: "CShims", path: "Sources/CShims", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("dl")]),
        // MPI is not linked either: CMPI opens libmpi at run time (Open MPI's handles are the
        // library's globals, looked up by name), so trickbook builds and runs without MPI.
        .target(name: "CMPI", path: "Sources/CMPI", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CPNG", path: "Sources/System/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/System/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The stdlib and the notebook page, built into the binary (C23 #embed).
        .target(name: "CAssets", path: "Sources/CAssets"),
        .systemLibrary(name: "CEdit", path: "Sources/System/CEdit", providers: [.apt(["libedit-dev"])]),

        // MARK: Files written atomically (a temporary name, then a rename), shared by every writer
        .target(name: "TrickbookFiles"),

        // MARK: The embedded files, as Swift strings
        .target(name: "TrickbookAssets", dependencies: ["CAssets"]),

        // MARK: Tensor engine: storage, ops with their gradients, autodiff, random numbers
        .target(name: "TrickbookTensor", dependencies: ["CShims"], swiftSettings: optimizedInDebug),

        // MARK: Models: the module system, layers, the ResNet family, summaries, checkpoints
        .target(name: "TrickbookModels", dependencies: ["TrickbookTensor", "TrickbookFiles"], swiftSettings: optimizedInDebug),

        // MARK: Data: datasets and their formats
        .target(name: "TrickbookData", dependencies: ["TrickbookTensor", "TrickbookFiles", "CZlib", "CPNG"], swiftSettings: optimizedInDebug),

        // MARK: The processes of a data-parallel run (MPI), a world of one without it
        .target(name: "TrickbookMPI", dependencies: ["CMPI"]),

        // MARK: Training: optimizer, schedules, losses, low precision, the training step, evaluation, data parallelism
        .target(name: "TrickbookTraining", dependencies: ["TrickbookTensor", "TrickbookModels", "TrickbookData", "TrickbookMPI"], swiftSettings: optimizedInDebug),

        // MARK: Display: charts, tables and progress bars as text and SVG; knows nothing of tensors or the language
        .target(name: "TrickbookDisplay"),

        // MARK: The language: knows nothing of tensors; host objects come in through its embedding API
        .target(
            name: "TrickbookScript", dependencies: [.product(name: "Atomics", package: "swift-atomics")],
            // The interpreter's frames and globals are class storage touched on every step; the
            // runtime exclusivity checks on them cost more than the work (measured with perf).
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),

        // MARK: Bindings: the one place where the language meets the Swift objects
        .target(name: "TrickbookBindings", dependencies: ["TrickbookScript", "TrickbookTensor", "TrickbookModels", "TrickbookData", "TrickbookTraining", "TrickbookDisplay", "TrickbookFiles", "TrickbookMPI"]),

        // MARK: The REPL and the notebook runner
        .target(name: "TrickbookREPL", dependencies: ["TrickbookScript", "TrickbookFiles", "CEdit"]),

        // MARK: The notebook in the browser and HTML reports: the REPL's session behind a web page
        .target(
            name: "TrickbookNotebook",
            dependencies: [
                "TrickbookREPL", "TrickbookScript", "TrickbookAssets", "TrickbookFiles",
                .product(name: "FlyingFox", package: "FlyingFox"), .product(name: "Ink", package: "Ink"),
            ]),

        // MARK: The command-line program
        .executableTarget(
            name: "trickbook",
            dependencies: [
                "TrickbookTensor", "TrickbookModels", "TrickbookData", "TrickbookTraining", "TrickbookScript", "TrickbookBindings", "TrickbookREPL", "TrickbookNotebook", "TrickbookAssets", "TrickbookMPI", "TrickbookFiles", "CPNG", "CZlib", "CEdit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: Tests
        .testTarget(name: "TrickbookTensorTests", dependencies: ["TrickbookTensor"]),
        .testTarget(name: "TrickbookModelsTests", dependencies: ["TrickbookModels"]),
        .testTarget(name: "TrickbookTrainingTests", dependencies: ["TrickbookTraining", "TrickbookData"]),
        // mpirun runs the built binary on scripts/ (read where they are, not copied).
        .testTarget(name: "TrickbookParallelTests", dependencies: ["TrickbookModels", "TrickbookTensor"], exclude: ["scripts"]),
        .testTarget(name: "TrickbookDataTests", dependencies: ["TrickbookData", "CZlib"]),
        .testTarget(name: "TrickbookBindingsTests", dependencies: ["TrickbookBindings", "TrickbookScript", "TrickbookDisplay"]),
        .testTarget(name: "TrickbookLanguageTests", dependencies: ["TrickbookScript"], resources: [.copy("scripts")]),
        .testTarget(name: "TrickbookREPLTests", dependencies: ["TrickbookREPL"], resources: [.copy("notebooks")]),
        .testTarget(
            name: "TrickbookNotebookTests",
            dependencies: ["TrickbookNotebook", "TrickbookAssets", "TrickbookREPL", "TrickbookBindings", "TrickbookScript"]),
    ],
    swiftLanguageModes: [.v5]
)
