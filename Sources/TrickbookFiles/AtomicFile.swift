import Foundation

public struct WriteError: Error, CustomStringConvertible {
    public let description: String
}

/// The temporary name a write to `path` goes through before it is renamed into place
/// (`path.tmp-PID-RANDOM`: two threads of one process writing the same file each rename their
/// own). Temporaries of the same target left by writers that died mid-way (a `kill -9` during a
/// save) are removed first, so they do not pile up.
public func temporaryPath(for path: String) -> String {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent().path, prefix = url.lastPathComponent + ".tmp-"
    if let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) {
        for name in names where name.hasPrefix(prefix) {
            // Only a writer that no longer exists: kill(pid, 0) fails with ESRCH.
            let owner = name.dropFirst(prefix.count).split(separator: "-", maxSplits: 1).first ?? ""
            guard let pid = Int32(owner), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            unlink((dir.isEmpty ? "." : dir) + "/" + name)
        }
    }
    return path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// Writes to a temporary name beside `path`, then renames, so that a failure never leaves half a file.
public func writeAtomically(_ text: String, to path: String) throws {
    try writeAtomically(Data(text.utf8), to: path)
}

/// Whether this process writes files. In a data-parallel run rank 0 alone writes (checkpoints,
/// pictures, tables, JSON): the other ranks hold the same state and would write the same files.
public enum FileWrites {
    public nonisolated(unsafe) static var enabled = true
}

/// Writes bytes to a temporary name beside `path`, then renames (nothing when FileWrites is off).
public func writeAtomically(_ bytes: Data, to path: String) throws {
    guard FileWrites.enabled else { return }
    let tmp = temporaryPath(for: path)
    do { try bytes.write(to: URL(fileURLWithPath: tmp)) } catch {
        throw WriteError(description: "cannot write \(path): \(error.localizedDescription)")
    }
    guard rename(tmp, path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(tmp)
        throw WriteError(description: "cannot write \(path): \(reason)")
    }
}
