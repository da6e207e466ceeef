import Foundation

public struct WriteError: Error, CustomStringConvertible {
    public let description: String
}

/// Writes to a temporary name beside `path`, then renames, so that a failure never leaves half a file.
public func writeAtomically(_ text: String, to path: String) throws {
    let tmp = path + ".tmp-\(getpid())"
    do { try text.write(toFile: tmp, atomically: false, encoding: .utf8) } catch {
        throw WriteError(description: "cannot write \(path): \(error.localizedDescription)")
    }
    guard rename(tmp, path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(tmp)
        throw WriteError(description: "cannot write \(path): \(reason)")
    }
}
