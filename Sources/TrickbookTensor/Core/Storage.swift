import Foundation

/// A buffer of Float32 values. Tensors share one when they are reshaped views of each other.
final class Storage {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    /// Allocates `count` floats, uninitialised. `count` has been checked by `Memory.check`.
    init(uninitialized count: Int) {
        self.count = count
        pointer = .allocate(capacity: Swift.max(count, 1))
    }

    deinit { pointer.deallocate() }
}

/// Guards against allocations that would exhaust memory: they become errors instead of an
/// out-of-memory kill.
public enum Memory {
    /// Bytes of physical memory.
    public static let physicalBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : Int.max
    }()

    /// Bytes the kernel says are available now (MemAvailable), read only for large requests.
    static func availableBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return physicalBytes }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return physicalBytes
    }

    /// The number of elements of `shape`, after checking that every size is non-negative, that the
    /// product does not overflow, and that the bytes fit in the memory there is.
    static func elementCount(_ shape: [Int], op: String) throws -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw TensorError(op, "negative size \(d) in shape \(fmt(shape))") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else { throw TensorError(op, "shape \(fmt(shape)) has too many elements") }
            n = p
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow else { throw TensorError(op, "shape \(fmt(shape)) has too many elements") }
        if bytes > 256 << 20 {
            let available = Swift.min(availableBytes(), physicalBytes)
            guard bytes <= available else {
                throw TensorError(op, "cannot allocate a tensor of shape \(fmt(shape)) (\(gib(bytes))): only \(gib(available)) of memory is available")
            }
        }
        return n
    }

    static func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
}
