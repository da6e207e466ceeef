import Foundation
import Testing

/// Two hosts made of this machine: two network namespaces joined by a veth pair, each with its
/// own address, so that the ranks' traffic really crosses a network interface (TCP, no shared
/// memory). mpirun starts the second host's daemon through a "remote shell" that enters its
/// namespace, as it would ssh to another machine.
enum Namespaces {
    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @discardableResult
    static func run(_ args: [String]) -> (Int32, String) {
        guard let ip else { return (127, "no ip command (apt install iproute2)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ip)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (127, "\(error)") }
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    /// Whether this process may make network namespaces (root with CAP_NET_ADMIN, iproute2).
    static let possible: Bool = {
        let probe = "tbprobe\(getpid())"
        guard run(["netns", "add", probe]).0 == 0 else { return false }
        run(["netns", "del", probe])
        return true
    }()
}

@Suite(.serialized, .enabled(if: MPIRun.available && Namespaces.possible,
                            "needs Open MPI, iproute2, and root with CAP_NET_ADMIN to make network namespaces"))
struct AcrossHostsTests {
    @Test func twoHostsOverAVethPairTrainAsOneProcess() throws {
        let id = getpid() % 100_000
        let a = "tbhostA\(id)", b = "tbhostB\(id)", va = "tbva\(id)", vb = "tbvb\(id)"
        let hostA = "10.199.77.1", hostB = "10.199.77.2"
        defer {
            Namespaces.run(["netns", "del", a])
            Namespaces.run(["netns", "del", b])
        }
        for step in [["netns", "add", a], ["netns", "add", b], ["link", "add", va, "type", "veth", "peer", "name", vb],
                     ["link", "set", va, "netns", a], ["link", "set", vb, "netns", b],
                     ["-n", a, "addr", "add", hostA + "/24", "dev", va], ["-n", b, "addr", "add", hostB + "/24", "dev", vb],
                     ["-n", a, "link", "set", va, "up"], ["-n", b, "link", "set", vb, "up"],
                     ["-n", a, "link", "set", "lo", "up"], ["-n", b, "link", "set", "lo", "up"]] {
            let (status, out) = Namespaces.run(step)
            try #require(status == 0, "ip \(step.joined(separator: " ")): \(out)")
        }
        let dir = try MPIRun.directory()
        // mpirun's remote shell: "agent HOST COMMAND..." runs COMMAND on HOST's namespace.
        let agent = dir + "/netns-shell"
        try """
            #!/bin/sh
            host="$1"; shift
            case "$host" in \(hostB)) ns=\(b) ;; *) ns=\(a) ;; esac
            exec \(Namespaces.ip ?? "ip") netns exec "$ns" sh -c "$*"
            """.write(toFile: agent, atomically: true, encoding: .utf8)
        chmod(agent, 0o755)
        func sent() -> Int {
            let (_, out) = Namespaces.run(["netns", "exec", a, "cat", "/sys/class/net/\(va)/statistics/tx_bytes"])
            return Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let before = sent()
        let subnet = "10.199.77.0/24"
        let two = try MPIRun.run(
            ["run", MPIRun.scripts + "/same-weights.tb"], mpi: 2, in: dir,
            launcher: ["--host", "\(hostA),\(hostB)", "--mca", "plm_rsh_agent", agent, "--mca", "btl", "tcp,self",
                       "--mca", "btl_tcp_if_include", subnet, "--mca", "oob_tcp_if_include", subnet],
            timeout: 600, wrap: [Namespaces.ip ?? "ip", "netns", "exec", a])
        let bytes = sent() - before
        #expect(two.status == 0, "\(two.err)\n\(two.out)")
        print("two hosts: \(bytes) bytes left host A through \(va) during the run")
        // 20 steps, each summing ResNet-20-D's 1.1 MB of gradients (half of it sent each way at least).
        #expect(bytes > 10 << 20, "only \(bytes) bytes crossed the veth pair")
        // The global losses of the first steps are one process's (later ones drift as FP32 sums
        // in another order do: see DataParallelTests).
        let one = try MPIRun.run(["run", MPIRun.scripts + "/same-weights.tb"], mpi: nil, in: dir)
        #expect(one.status == 0, "\(one.err)")
        let la = DataParallelTests().losses(one.out), lb = DataParallelTests().losses(two.out)
        #expect(lb.count == 20, "\(two.out)")
        for n in 1...2 {
            let x = try #require(la[n]), y = try #require(lb[n])
            #expect(abs(x - y) <= 1e-5 * x, "step \(n): loss \(x) on one process, \(y) on two hosts")
        }
    }
}
