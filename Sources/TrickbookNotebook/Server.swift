import FlyingFox
import FlyingSocks
import Foundation
import TrickbookREPL

/// `trickbook notebook [FILE.tb]`: the notebook page, served by FlyingFox on 127.0.0.1 unless
/// `--host` says otherwise. Anyone who can reach it can run code, so every request carries the
/// random token of the printed URL, the WebSocket checks its Origin, and files are served from the
/// notebook's folder only.
public final class NotebookServer: @unchecked Sendable {
    let host: NotebookHost
    let token: String
    let bindHost: String
    let requestedPort: UInt16
    let folder: String
    private var server: HTTPServer?
    private var flushing: Task<Void, Never>?

    /// `undoBytes`: what undo's snapshots may hold together (nil: 1 GiB or an eighth of memory).
    public init(path: String, bindHost: String = "127.0.0.1", port: UInt16 = 0, token: String? = nil, undoBytes: Int? = nil,
                makeSession: @escaping () -> Session) throws {
        host = try NotebookHost(path: path, snapshotLimit: undoBytes ?? NotebookHost.defaultSnapshotLimit, makeSession: makeSession)
        self.token = token ?? NotebookServer.randomToken()
        self.bindHost = bindHost
        requestedPort = port
        // Not NSString.deletingLastPathComponent: it has crashed on a name without a slash here.
        folder = path.lastIndex(of: "/").map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
    }

    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", g.next() as UInt64) }.joined()
    }

    /// Starts listening and returns the page's URL (with the token); `run` serves until stopped.
    public func start() async throws -> String {
        let server: HTTPServer
        do {
            server = bindHost.contains(":")
                ? HTTPServer(address: try .inet6(ip6: bindHost, port: requestedPort), timeout: 3600, logger: .disabled, handler: Router(owner: self))
                : HTTPServer(address: try .inet(ip4: bindHost, port: requestedPort), timeout: 3600, logger: .disabled, handler: Router(owner: self))
        } catch {
            throw NotebookError("--host \(bindHost) is not an IPv4 or IPv6 address")
        }
        self.server = server
        let failure = FailureBox()
        Task {
            do { try await server.run() } catch { failure.error = error }
        }
        do { try await server.waitUntilListening(timeout: 10) } catch {
            throw NotebookError("cannot listen on \(bindHost):\(requestedPort): \(failure.error.map { "\($0)" } ?? "\(error)")")
        }
        let flusher = host
        flushing = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 10_000_000)
                flusher.flush()
            }
        }
        guard let bound = await server.listeningAddress else { throw NotebookError("the server did not start listening") }
        port = Self.port(of: bound) ?? requestedPort
        Self.sendWithoutDelay(listeningOn: port)
        let shown = bindHost.contains(":") ? "[\(bindHost)]" : bindHost
        return "http://\(shown):\(port)/?token=\(token)"
    }

    /// Sets TCP_NODELAY on the listening socket, which the connections it accepts inherit (Linux
    /// clones the listener's options). Without it a small message written right after another
    /// waits for the page's delayed ACK: a printed line arrived 43-51 ms late, where it now takes
    /// about a millisecond. FlyingFox makes the socket itself, so it is found by its port.
    static func sendWithoutDelay(listeningOn port: UInt16) {
        for fd in Int32(3)..<Int32(1024) {
            var listening: Int32 = 0, length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening == 1 else { continue }
            var address = sockaddr_storage(), size = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
            }
            guard named == 0 else { continue }
            let bound: UInt16
            switch Int32(address.ss_family) {
            case AF_INET: bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } }
            case AF_INET6: bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) } }
            default: continue
            }
            guard bound == port else { continue }
            var on: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// The port it listens on (known once started).
    public private(set) var port: UInt16 = 0

    public func stop() async {
        flushing?.cancel()
        await server?.stop()
    }

    static func port(of address: Socket.Address) -> UInt16? {
        switch address {
        case .ip4(_, let port), .ip6(_, let port): return port
        case .unix: return nil
        }
    }

    /// Whether a request carries the token (a query item or an `Authorization: token …` header),
    /// compared in constant time.
    func authorized(_ request: HTTPRequest) -> Bool {
        let given = request.query["token"]
            ?? request.headers[HTTPHeader("Authorization")].flatMap { $0.hasPrefix("token ") ? String($0.dropFirst(6)) : nil }
        guard let given else { return false }
        return constantTimeEqual(Array(given.utf8), Array(token.utf8))
    }

    /// Origins the page may open the WebSocket from: this server's own addresses.
    func allowedOrigin(_ origin: String?, host: String?) -> Bool {
        guard let origin else { return true }  // not a browser (a browser always sends one)
        // The address the page was opened at (with --host 0.0.0.0, any of the machine's); the
        // token still guards against a rebound name.
        if let host, origin == "http://\(host)" { return true }
        var hosts = ["127.0.0.1", "localhost", "[::1]"]
        hosts.append(bindHost.contains(":") ? "[\(bindHost)]" : bindHost)
        return hosts.contains { origin == "http://\($0):\(port)" }
    }

    /// The file a `/files/…` path names inside the notebook's folder, or nil when it is outside it
    /// (`..`, an absolute path, a symbolic link that leads out) or is not a regular file.
    func servedFile(_ relative: String) -> String? {
        guard !relative.isEmpty, !relative.hasPrefix("/"), !relative.contains("\0"),
            !relative.split(separator: "/").contains("..")
        else { return nil }
        guard let root = realpath(folder, nil) else { return nil }
        defer { free(root) }
        let candidate = String(cString: root) + "/" + relative
        guard let resolved = realpath(candidate, nil) else { return nil }
        defer { free(resolved) }
        let r = String(cString: resolved), base = String(cString: root)
        guard r.hasPrefix(base.hasSuffix("/") ? base : base + "/") else { return nil }
        var st = stat()
        guard stat(r, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return r
    }
}

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    for k in 0..<max(a.count, b.count) { diff |= (k < a.count ? a[k] : 0) ^ (k < b.count ? b[k] : 0) }
    return diff == 0
}

/// Every request goes through here: the token first, then the page, the socket or a file.
struct Router: HTTPHandler {
    let owner: NotebookServer

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard owner.authorized(request) else {
            return Self.plain(.forbidden, "403: this notebook needs the token of the URL trickbook printed\n")
        }
        let path = request.path
        if request.method == .GET && (path == "/" || path.isEmpty) {
            let html = Page.html(meta: owner.host.meta, cells: [], live: Page.Live(token: owner.token))
            return HTTPResponse(
                statusCode: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store", HTTPHeader("X-Content-Type-Options"): "nosniff"],
                body: Data(html.utf8))
        }
        if path == "/ws" {
            guard owner.allowedOrigin(request.headers[HTTPHeader("Origin")], host: request.headers[HTTPHeader("Host")]) else {
                return Self.plain(.forbidden, "403: a WebSocket from another origin\n")
            }
            return try await WebSocketHTTPHandler(handler: MessageFrameWSHandler(handler: PageSocket(host: owner.host)))
                .handleRequest(request)
        }
        if request.method == .GET, path.hasPrefix("/files/") {
            guard let file = owner.servedFile(String(path.dropFirst("/files/".count))) else {
                return Self.plain(.notFound, "404: no such file in the notebook's folder\n")
            }
            // Served whole from memory: files beyond 256 MB (not a notebook's pictures) are refused.
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
            guard let size, size <= 256 << 20, let data = FileManager.default.contents(atPath: file) else {
                return Self.plain(.forbidden, "403: files over 256 MB are not served\n")
            }
            return HTTPResponse(
                statusCode: .ok,
                headers: [
                    .contentType: Self.type(of: file), HTTPHeader("X-Content-Type-Options"): "nosniff",
                    // A served file never runs script in the page's origin.
                    HTTPHeader("Content-Security-Policy"): "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'",
                ],
                body: data)
        }
        return Self.plain(.notFound, "404\n")
    }

    static func plain(_ code: HTTPStatusCode, _ text: String) -> HTTPResponse {
        HTTPResponse(statusCode: code, headers: [.contentType: "text/plain; charset=utf-8"], body: Data(text.utf8))
    }

    static func type(of file: String) -> String {
        switch (file as NSString).pathExtension.lowercased() {
        case "png": return "image/png"
        case "svg": return "image/svg+xml"
        case "jpg", "jpeg": return "image/jpeg"
        default: return "text/plain; charset=utf-8"
        }
    }
}

/// One page's WebSocket: its messages go to the host; the host's events come back.
struct PageSocket: WSMessageHandler {
    let host: NotebookHost

    func makeMessages(for client: AsyncStream<WSMessage>) async throws -> AsyncStream<WSMessage> {
        // A page that stops reading (a sleeping laptop) is dropped once 20,000 messages wait for
        // it, rather than holding them all.
        let (stream, continuation) = AsyncStream<WSMessage>.makeStream(bufferingPolicy: .bufferingOldest(20_000))
        let k = host.connect { message in
            if case .dropped = continuation.yield(.text(message)) { continuation.finish() }
        }
        let host = self.host
        Task {
            for await message in client {
                if case .text(let t) = message { host.handle(t, from: k) }
            }
            host.disconnect(k)
            continuation.finish()
        }
        return stream
    }
}

final class FailureBox: @unchecked Sendable { var error: Error? }

struct NotebookError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
