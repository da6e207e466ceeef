import Foundation
import Synchronization

/// A buffer of Float32 values (or, for a tensor in a BF16 layout, of BF16 pairs: see `Layout`).
/// Tensors share one when they are reshaped views of each other.
final class Storage {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    /// Floats held by all storages now (see `Memory.tensorBytes`).
    static let live = Atomic<Int>(0)

    /// Allocates `count` floats, uninitialised. `count` has been checked by `Memory.elementCount`.
    init(uninitialized count: Int) {
        self.count = count
        pointer = BufferPool.shared.take(count)
        Storage.live.add(count, ordering: .relaxed)
    }

    deinit {
        Storage.live.subtract(count, ordering: .relaxed)
        BufferPool.shared.give(pointer, count: count)
    }
}

/// Scratch memory for a kernel, returned to the pool when it goes out of scope.
final class Scratch {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(_ count: Int) { self.count = count; pointer = BufferPool.shared.take(count) }
    deinit { BufferPool.shared.give(pointer, count: count) }
}

/// Keeps freed large buffers for reuse. A training step frees and reallocates the same large
/// buffers every step; glibc hands them back to the kernel and the next step pays page faults
/// and zeroing, which measured costlier than the convolutions themselves (ResNet-20 conv
/// forward + backward: 44 GFLOP/s without the pool, see `trickbook bench conv`).
final class BufferPool {
    static let shared = BufferPool()
    /// Buffers below this many floats go straight to malloc, which handles them well.
    static let minimum = 16 * 1024
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedFloats = 0
    /// A quarter of memory: ResNet-50's step at batch 16 frees about 3 GiB, and an eighth (3 GiB
    /// here) let part of it go back to the kernel every step (BF16 training 7% slower, 1.2 million
    /// page faults in an 8 s run against 0.8 million, all of them in the first steps).
    private let limitFloats = Swift.min(Memory.physicalBytes / 4, 8 << 30) / MemoryLayout<Float>.stride
    private let lock = NSLock()

    /// Sizes are rounded up to 2^k · {1, 1¼, 1½, 1¾} so that a class fits many requests and wastes
    /// at most a quarter.
    static func sizeClass(_ n: Int) -> Int {
        guard n > minimum else { return n }
        let top = Int.bitWidth - 1 - (n - 1).leadingZeroBitCount  // 2^top < n <= 2^(top+1)
        let quarter = 1 << (top - 2)
        return ((n + quarter - 1) / quarter) * quarter
    }

    func take(_ n: Int) -> UnsafeMutablePointer<Float> {
        let size = BufferPool.sizeClass(Swift.max(n, 1))
        if size > BufferPool.minimum {
            lock.lock()
            if let p = free[size]?.popLast() {
                cachedFloats -= size
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        return .allocate(capacity: size)
    }

    func give(_ p: UnsafeMutablePointer<Float>, count n: Int) {
        let size = BufferPool.sizeClass(Swift.max(n, 1))
        guard size > BufferPool.minimum else { p.deallocate(); return }
        lock.lock()
        if cachedFloats + size <= limitFloats {
            free[size, default: []].append(p)
            cachedFloats += size
            lock.unlock()
        } else {
            lock.unlock()
            p.deallocate()
        }
    }

    /// Returns every cached buffer to the system (before an allocation that might not fit).
    func trim() {
        lock.lock()
        let all = free.values.flatMap { $0 }
        free = [:]
        cachedFloats = 0
        lock.unlock()
        all.forEach { $0.deallocate() }
    }
}

/// Guards against allocations that would exhaust memory: they become errors instead of an
/// out-of-memory kill.
public enum Memory {
    /// Bytes held by tensors now, in every thread (a script's garbage cycles of tensors show here).
    public static var tensorBytes: Int { Storage.live.load(ordering: .relaxed) * MemoryLayout<Float>.stride }

    /// This process's resident memory now and at its peak (VmRSS and VmHWM; 0 where unknown).
    public static var residentBytes: Int { (number(in: "/proc/self/status", after: "VmRSS:") ?? 0) * 1024 }
    public static var peakResidentBytes: Int { (number(in: "/proc/self/status", after: "VmHWM:") ?? 0) * 1024 }

    /// Bytes of physical memory.
    public static let physicalBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : Int.max
    }()

    /// Bytes this process can still take, read only for large requests: the smallest of what the
    /// kernel says is available (MemAvailable), what the cgroup allows beyond what it uses (a
    /// container's memory.max), and what the address-space limit (RLIMIT_AS) leaves.
    static func availableBytes() -> Int {
        var best = physicalBytes
        if let kb = number(in: "/proc/meminfo", after: "MemAvailable:") { best = Swift.min(best, kb * 1024) }
        if let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
           let room = cgroupHeadroom(membership: text, root: "/sys/fs/cgroup") {
            best = Swift.min(best, room)
        }
        var r = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &r) == 0, r.rlim_cur < UInt64(Int.max),  // RLIM_INFINITY is all ones
           let pages = number(in: "/proc/self/statm") {
            let used = pages.multipliedReportingOverflow(by: sysconf(Int32(_SC_PAGESIZE)))
            if !used.overflow { best = Swift.min(best, Swift.max(0, Int(r.rlim_cur) - used.partialValue)) }
        }
        return best
    }

    /// What the memory cgroups this process is in (`membership`, the text of /proc/self/cgroup)
    /// leave below their limits: the tightest over its own group and every group above it, since
    /// each one's limit applies. Both cgroup v2 (`0::/path`, memory.max) and v1 (the memory
    /// controller's memory.limit_in_bytes) are read; nil when no limit is set or readable.
    static func cgroupHeadroom(membership: String, root: String) -> Int? {
        var best: Int?
        func visit(_ base: String, _ path: Substring, limit: String, usage: String) {
            var parts = path.split(separator: "/").map(String.init).filter { $0 != ".." && $0 != "." }
            while true {
                let dir = ([base] + parts).joined(separator: "/")
                if let l = number(in: dir + "/" + limit), let u = number(in: dir + "/" + usage) {
                    best = Swift.min(best ?? Int.max, Swift.max(0, l - u))  // both are >= 0: no overflow
                }
                if parts.isEmpty { break }
                parts.removeLast()
            }
        }
        for line in membership.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                for base in [root, root + "/unified"] {
                    visit(base, fields[2], limit: "memory.max", usage: "memory.current")
                }
            } else if fields[1].split(separator: ",").contains("memory") {
                visit(root + "/memory", fields[2], limit: "memory.limit_in_bytes", usage: "memory.usage_in_bytes")
            }
        }
        return best
    }

    /// The first whole number in a small system file (after `label` when given); nil when the
    /// file is missing or holds none ("max" in memory.max means no limit).
    static func number(in path: String, after label: String? = nil) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var rest = Substring(text)
        if let label {
            guard let r = text.range(of: label) else { return nil }
            rest = text[r.upperBound...]
        }
        let digits = rest.drop { $0 == " " || $0 == "\t" }.prefix { $0.isNumber }
        return Int(digits)
    }

    /// The elements of a tensor of `shape`, checked as every tensor's are (for code that builds the
    /// values before the tensor, such as tensor() from nested lists).
    public static func checkedCount(_ shape: [Int], op: String) throws -> Int { try elementCount(shape, op: op) }

    /// The number of elements of `shape`, after checking that every size is non-negative, that the
    /// product does not overflow, and that the bytes fit in the memory there is.
    static func elementCount(_ shape: [Int], op: String) throws -> Int {
        guard shape.count <= Tensor.maxRank else {
            throw TensorError(op, "a tensor has at most \(Tensor.maxRank) axes, this one would have \(shape.count)")
        }
        var n = 1, nonzero = 1
        for d in shape {
            guard d >= 0 else { throw TensorError(op, "negative size \(d) in shape \(fmt(shape))") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            // Sizes after a 0 still multiply in strides and loops: their product must fit too.
            let (q, overflow2) = nonzero.multipliedReportingOverflow(by: Swift.max(d, 1))
            guard !overflow, !overflow2, q <= 1 << 48 else { throw TensorError(op, "shape \(fmt(shape)) has too many elements") }
            (n, nonzero) = (p, q)
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: MemoryLayout<Float>.stride)
        guard !overflow else { throw TensorError(op, "shape \(fmt(shape)) has too many elements") }
        if bytes > 32 << 20 {
            // A margin stays free for the next thread's stack and everyday allocations.
            let reserve = 256 << 20
            var available = Swift.min(availableBytes(), physicalBytes) - reserve
            if bytes > available {
                BufferPool.shared.trim()
                available = Swift.min(availableBytes(), physicalBytes) - reserve
            }
            guard bytes <= available else {
                throw TensorError(op, "cannot allocate a tensor of shape \(fmt(shape)) (\(gib(bytes))): only \(gib(available)) of memory is available")
            }
        }
        return n
    }

    static func gib(_ bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
}
