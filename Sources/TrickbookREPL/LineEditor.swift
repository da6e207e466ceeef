import CEdit
import TrickbookFiles
import Foundation
import TrickbookScript

// libedit, with our own SIGINT handling: libedit's (EL_SIGNAL) sends the signal on to the whole
// process group, so it stays off and a handler that only sets flags is installed instead.

/// The flags a SIGINT sets. Created before the handler is installed (globals initialise lazily,
/// which a signal handler must not trigger).
nonisolated(unsafe) private var sigintSeen: UnsafeMutablePointer<sig_atomic_t> = {
    let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
    p.pointee = 0
    return p
}()
nonisolated(unsafe) private var sigintInterrupt: InterruptFlag?
nonisolated(unsafe) private var installedFlags: [InterruptFlag] = []
/// A pipe the handler writes a byte to (the self-pipe trick). The prompt waits on it beside the
/// terminal: a SIGINT that arrives while the reader is between two reads, or on another thread
/// (the kernel gives a process's signal to any thread that does not block it), still wakes it.
nonisolated(unsafe) private var sigintPipe: UnsafeMutablePointer<Int32> = {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
    p[0] = -1
    p[1] = -1
    if pipe(p) == 0 {  // non-blocking, and not inherited by programs a script starts
        for fd in [p[0], p[1]] {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }
    return p
}()

/// Installs the SIGINT handler: it sets the interpreter's interrupt flag (a running cell stops at
/// its next loop iteration or call) and a flag the line editor reads (Ctrl-C at the prompt).
func installInterruptHandler(_ flag: InterruptFlag) {
    _ = sigintSeen
    _ = sigintPipe
    // Every flag ever installed stays alive: the handler may be reading the previous one on another
    // thread while `:reset` installs the next.
    installedFlags.append(flag)
    sigintInterrupt = flag
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in
        sigintSeen.pointee = 1
        sigintInterrupt?.set()
        let saved = errno  // the interrupted code may be about to read it
        var byte: UInt8 = 1
        _ = write(sigintPipe[1], &byte, 1)  // async-signal-safe; a full pipe already wakes the reader
        errno = saved
    }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0  // no SA_RESTART: a read at the prompt returns EINTR
    sigaction(SIGINT, &action, nil)
    // A parent may have started us with SIGINT blocked; Ctrl-C must reach the handler.
    var unblock = sigset_t()
    sigemptyset(&unblock)
    sigaddset(&unblock, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
}

func takeSigint() -> Bool {
    let seen = sigintSeen.pointee != 0
    sigintSeen.pointee = 0
    var drain = [UInt8](repeating: 0, count: 64)
    while read(sigintPipe[0], &drain, drain.count) > 0 {}
    return seen
}

nonisolated(unsafe) private var promptBuffer: UnsafeMutablePointer<CChar> = strdup("tb> ")
nonisolated(unsafe) var activeCompleter: ((String) -> [String])?

/// The terminal, opened again without blocking: Ctrl-C makes the kernel flush the input, so the
/// bytes poll() saw may be gone when read() comes, and a blocking read would then wait forever.
/// A descriptor of its own keeps O_NONBLOCK off the one stdin shares with the shell.
nonisolated(unsafe) private var terminalFD: Int32 = 0

/// Reads one character for libedit: returns -1 on Ctrl-C so that el_gets gives up the line. It
/// waits on the terminal and the SIGINT pipe together, so no Ctrl-C is missed between two reads.
private let readChar: @convention(c) (OpaquePointer?, UnsafeMutablePointer<wchar_t>?) -> Int32 = { _, out in
    var byte: UInt8 = 0
    var utf8: [UInt8] = []
    while true {
        if sigintSeen.pointee != 0 { return -1 }
        var fds = [pollfd(fd: terminalFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: sigintPipe[0], events: Int16(POLLIN), revents: 0)]
        let ready = poll(&fds, sigintPipe[0] >= 0 ? 2 : 1, -1)
        if ready < 0 {
            if errno == EINTR { continue }
            return -1
        }
        if fds[1].revents != 0 {
            var drain = [UInt8](repeating: 0, count: 64)
            _ = read(sigintPipe[0], &drain, drain.count)
            continue
        }
        if fds[0].revents == 0 { continue }
        let n = read(terminalFD, &byte, 1)
        if n == 1 {
            utf8.append(byte)
            // Decode one UTF-8 character (1–4 bytes).
            let need = utf8[0] < 0x80 ? 1 : utf8[0] < 0xE0 ? 2 : utf8[0] < 0xF0 ? 3 : 4
            if utf8.count < need { continue }
            let scalar = String(decoding: utf8, as: UTF8.self).unicodeScalars.first?.value ?? 0xFFFD
            out?.pointee = wchar_t(bitPattern: scalar)
            return 1
        }
        if n == 0 { return 0 }
        if errno == EINTR || errno == EAGAIN { continue }
        return -1
    }
}

private let completeFunction: @convention(c) (OpaquePointer?, Int32) -> UInt8 = { el, _ in
    guard let el, let info = el_line(el)?.pointee, let completer = activeCompleter else { return TB_CC_ERROR }
    let before = String(decoding: UnsafeRawBufferPointer(start: info.buffer, count: info.cursor - info.buffer), as: UTF8.self)
    // The word being completed: letters, digits, '_' and '.'.
    let word = String(before.reversed().prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }.reversed())
    let typed = word.split(separator: ".", omittingEmptySubsequences: false).last.map(String.init) ?? word
    let matches = completer(before)
    guard !matches.isEmpty else { return TB_CC_ERROR }
    // The longest common prefix of the matches, beyond what is typed.
    var common = matches[0]
    for m in matches.dropFirst() { while !m.hasPrefix(common) { common.removeLast() } }
    if common.count > typed.count, common.hasPrefix(typed) {
        el_insertstr(el, String(common.dropFirst(typed.count)))
        return TB_CC_REFRESH
    }
    if matches.count > 1 {
        FileHandle.standardOutput.write(("\n" + matches.joined(separator: "  ") + "\n").data(using: .utf8) ?? Data())
        return TB_CC_REDISPLAY
    }
    return TB_CC_REFRESH
}

/// A line editor over libedit: prompts, history saved across sessions, TAB completion.
final class LineEditor {
    enum Read { case line(String), interrupted, endOfInput }

    private let el: OpaquePointer
    private let history: OpaquePointer
    private var event = HistEvent()
    private let historyPath: String?

    init?(historyPath: String?) {
        guard let el = el_init("trickbook", stdin, stdout, stderr), let h = history_init() else { return nil }
        self.el = el
        history = h
        self.historyPath = historyPath
        if terminalFD == 0, let name = ttyname(0) {
            let fd = open(name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            if fd >= 0 { terminalFD = fd }
        }
        tb_history_set_size(h, &event, 2000)
        tb_history_set_unique(h, &event)
        tb_el_set_history(el, h)
        tb_el_set_editor(el, "emacs")
        tb_el_set_prompt(el) { _ in promptBuffer }
        tb_el_bind_tab(el, completeFunction)
        el_set_getc(el)
        _ = tb_el_source_default(el)
        if let historyPath, FileManager.default.fileExists(atPath: historyPath) { tb_history_load(h, &event, historyPath) }
    }

    private func el_set_getc(_ el: OpaquePointer) { tb_el_set_getc(el, readChar) }

    deinit {
        el_end(el)
        history_end(history)
    }

    func readLine(prompt: String) -> Read {
        free(promptBuffer)
        promptBuffer = strdup(prompt)
        _ = takeSigint()
        var count: Int32 = 0
        guard let p = el_gets(el, &count) else {
            if takeSigint() {
                el_reset(el)
                return .interrupted
            }
            return .endOfInput
        }
        var line = String(cString: p)
        if line.hasSuffix("\n") { line.removeLast() }
        return .line(line)
    }

    /// Adds an entry to the history and saves the file (written to a temporary name, then renamed).
    func remember(_ entry: String) {
        guard !entry.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        tb_history_enter(history, &event, entry)
        guard let historyPath else { return }
        let tmp = temporaryPath(for: historyPath)
        if tb_history_save(history, &event, tmp) >= 0 { rename(tmp, historyPath) } else { unlink(tmp) }
    }
}
