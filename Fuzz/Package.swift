// swift-tools-version:6.0
// Coverage-guided fuzzers (libFuzzer) for trickbook: the language with its bindings, and the file
// readers. Built and run by Fuzz/run.sh, which passes -sanitize=fuzzer and -parse-as-library.
import PackageDescription

let package = Package(
    name: "trickbook-fuzz",
    dependencies: [.package(name: "trickbook", path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "FuzzScript", dependencies: ["FuzzDriver", .product(name: "TrickbookBindings", package: "trickbook")]),
        .executableTarget(name: "FuzzFiles", dependencies: ["FuzzDriver", .product(name: "TrickbookBindings", package: "trickbook")]),
    ],
    swiftLanguageModes: [.v5]
)
