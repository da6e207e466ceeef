import ArgumentParser
import TrickbookTensor

@main
struct Trickbook: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trickbook",
        abstract: "A notebook-style environment for the \"Bag of Tricks for Image Classification with CNNs\".",
        subcommands: [Demo.self, Bench.self, Doctor.self])
}
