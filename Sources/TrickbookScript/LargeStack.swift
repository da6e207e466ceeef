import Foundation

/// Runs `body` on a thread with a stack of `LargeStack.bytes`, and waits for it.
///
/// Compiling and running a script recurse on the depth of its syntax tree and of its calls. The
/// compiler and the interpreter bound both depths (`Compiler.maxNesting`, `Interpreter.maxDepth`),
/// and those bounds must be safe whatever thread the host calls from: a test runner's or a
/// dispatch queue's threads have small stacks. So every entry into the language runs here; a
/// call made from inside a script (a binding calling back into a function) is already here and
/// runs in place.
enum LargeStack {
    static let bytes = 256 << 20  // address space only: pages are touched as the stack grows

    /// Set (to any non-nil value) on the threads this starts.
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    private final class Job {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func run<T>(_ body: () throws -> T) throws -> T {
        if pthread_getspecific(key) != nil { return try body() }
        var result: Result<T, Error>?
        let started = withoutActuallyEscaping(body) { body -> Bool in
            let job = Job { result = Result { try body() } }
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            defer { pthread_attr_destroy(&attr) }
            pthread_attr_setstacksize(&attr, bytes)
            var thread = pthread_t()
            let context = Unmanaged.passRetained(job).toOpaque()
            let status = pthread_create(&thread, &attr, { context in
                guard let context else { return nil }
                pthread_setspecific(LargeStack.key, context)
                Unmanaged<Job>.fromOpaque(context).takeRetainedValue().body()
                return nil
            }, context)
            guard status == 0 else {
                Unmanaged<Job>.fromOpaque(context).release()
                return false
            }
            pthread_join(thread, nil)
            return true
        }
        // The depth limits are safe only on the large stack: without one, no script runs.
        guard started else { throw ScriptError("cannot start the script's thread (\(bytes >> 20) MiB of stack): the process is out of address space or threads") }
        guard let result else { throw ScriptError("internal error: the script's thread ended without a result") }
        return try result.get()
    }
}
