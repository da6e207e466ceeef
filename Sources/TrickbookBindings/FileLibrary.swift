import Foundation
import TrickbookFiles
import TrickbookScript

/// Files a notebook keeps between runs: records as JSON (the ablation's finished rows, so that a
/// killed study goes on where it stopped), written atomically like every file trickbook writes.
enum FileLibrary: Library {
    /// A JSON file larger than this is refused rather than read into memory.
    static let maxJSONBytes = 256 << 20

    static let rows: [Row] = [
        Row(
            "save_json(value, path)",
            doc: """
                Writes nil, bools, numbers, strings, lists and maps (string keys) as JSON, through a temporary \
                file renamed into place, so that a run killed mid-write leaves the old file whole. Floats read \
                back to the last bit.
                """,
            example: "save_json({\"row\": \"baseline\", \"top1\": [0.9121, 0.9134]}, \"runs.json\")"
        ) { a in
            let path = try a.string("path")
            let text: String
            do { text = try JSON.encode(try a.value("value")) } catch let e as JSON.Failure {
                throw a.fail("value", e.description)
            }
            try writeAtomically(text + "\n", to: path)
            return .nil_
        },
        Row(
            "load_json(path)",
            doc: "The value a JSON file holds (objects become maps, arrays lists); an error names the file, line and column.",
            example: "let runs = exists(\"runs.json\") ? load_json(\"runs.json\") : {}"
        ) { a in
            let path = try a.string("path")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw ScriptError("load_json(): cannot read \(path): it is a directory")
            }
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw ScriptError("load_json(): cannot read \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")")
            }
            defer { try? handle.close() }
            let data: Data
            do { data = try handle.read(upToCount: maxJSONBytes + 1) ?? Data() } catch {
                throw ScriptError("load_json(): cannot read \(path): \(error.localizedDescription)")
            }
            guard data.count <= maxJSONBytes else {
                throw ScriptError("load_json(): \(path) is larger than \(maxJSONBytes >> 20) MiB")
            }
            do { return try JSON.decode([UInt8](data), name: path) } catch let e as JSON.Failure {
                throw ScriptError("load_json(): \(e.description)")
            }
        },
        Row("exists(path)", doc: "Whether a file or directory exists at path.", example: "exists(\"runs.json\")") { a in
            .bool(FileManager.default.fileExists(atPath: try a.string("path")))
        },
    ]
    static let types: [HostType] = []
}
