import Foundation

/// A test's own client for the notebook server: raw HTTP requests (so that paths such as
/// `/files/../x` reach the server as written) and a WebSocket (RFC 6455: masked client frames,
/// fragmented server messages put back together).
final class WireClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, ok == 0 else { throw WireError("cannot connect to port \(port)") }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func write(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n > 0 else { throw WireError("connection closed or timed out") }
        buffer += chunk[0..<n]
    }

    private func take(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        let out = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return out
    }

    /// The response's head (status line and headers), up to the blank line.
    private func head() throws -> String {
        while true {
            if let end = buffer.indices.dropLast(3).first(where: { buffer[$0] == 13 && buffer[$0 + 1] == 10 && buffer[$0 + 2] == 13 && buffer[$0 + 3] == 10 }) {
                let text = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                return text
            }
            try fill()
        }
    }

    /// One GET; returns the status code and the body.
    static func get(port: UInt16, _ target: String, headers: [String: String] = [:]) throws -> (Int, String) {
        let c = try WireClient(port: port)
        var request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (k, v) in headers { request += "\(k): \(v)\r\n" }
        c.write(Array((request + "\r\n").utf8))
        let head = try c.head()
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        let body = try c.take(length)
        return (status, String(decoding: body, as: UTF8.self))
    }

    /// Opens a WebSocket; returns nil and the status when the server refuses it.
    static func webSocket(port: UInt16, token: String?, origin: String? = nil) throws -> (WireClient?, Int) {
        try webSocket(port: port, path: "/ws" + (token.map { "?token=\($0)" } ?? ""), origin: origin)
    }

    static func webSocket(port: UInt16, path: String, origin: String? = nil) throws -> (WireClient?, Int) {
        let c = try WireClient(port: port)
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        request += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        if let origin { request += "Origin: \(origin)\r\n" }
        c.write(Array((request + "\r\n").utf8))
        let head = try c.head()
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status == 101 ? c : nil, status)
    }

    /// Sends a text message (masked, as a client must).
    func send(_ text: String) {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $1 ^ mask[$0 % 4] }
        write(frame)
    }

    /// The next text message (fragments joined); pings and pongs are skipped.
    func receive() throws -> String {
        var message: [UInt8] = []
        while true {
            let h = try take(2)
            let fin = h[0] & 0x80 != 0, opcode = h[0] & 0x0F
            var length = Int(h[1] & 0x7F)
            if length == 126 { length = try take(2).reduce(0) { $0 << 8 | Int($1) } }
            else if length == 127 { length = try take(8).reduce(0) { $0 << 8 | Int($1) } }
            let mask = h[1] & 0x80 != 0 ? try take(4) : nil
            var payload = try take(length)
            if let mask { payload = payload.enumerated().map { $1 ^ mask[$0 % 4] } }
            if opcode == 8 { throw WireError("the server closed the socket") }
            if opcode == 9 || opcode == 10 { continue }
            message += payload
            if fin { return String(decoding: message, as: UTF8.self) }
        }
    }

    /// The next message as JSON.
    func event() throws -> [String: Any] {
        let text = try receive()
        guard let m = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw WireError("not a JSON object: \(text.prefix(200))")
        }
        return m
    }

    /// Reads events until one satisfies `stop`; returns all read, in order.
    func events(until stop: ([String: Any]) -> Bool) throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        while true {
            let e = try event()
            out.append(e)
            if stop(e) { return out }
        }
    }
}

struct WireError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
