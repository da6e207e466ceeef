import Foundation
import Testing
@testable import TrickbookScript

/// A host object that counts how many of its kind are alive.
final class Probe: HostObject {
    nonisolated(unsafe) static var alive = 0
    static let type = HostType("probe", doc: "Counts its instances.")
    override var hostType: HostType { Probe.type }
    override init() { Probe.alive += 1 }
    deinit { Probe.alive -= 1 }
}

/// What the bytecode VM adds to the tree: which functions it compiles, what `disasm` shows, and
/// that a call's registers let go of their values when it ends. (That compiled functions behave
/// as trees do is checked on every golden case, run both ways.)
@Suite(.serialized) struct BytecodeTests {
    @Test func functionsAreCompiledUnlessADefaultMakesAFunction() throws {
        let (i, out) = try session()
        try i.run("""
            fn add(a, b) { return a + b }
            fn mk() { return fn() => 1 }
            fn opt(a = 1, b = a + 1) { return [a, b] }
            fn maker(x, g = fn() => x) {
              x = 5
              return g()
            }
            print(add(1, 2), mk()(), opt(), opt(3), opt(3, 9), maker(1))
            """, name: "t")
        #expect(out() == ["3 1 [1, 2] [3, 4] [3, 9] 5"])
        func proto(_ name: String) -> FunctionProto? {
            if case .function(let f)? = i.global(name) { return f.proto }
            return nil
        }
        #expect(proto("add")?.bytecode != nil)
        #expect(proto("mk")?.bytecode?.onHeap == true, "a function that makes functions keeps its registers in a heap frame")
        #expect(proto("opt")?.bytecode != nil, "defaults are evaluated by the call's binding, then the body runs compiled")
        #expect(proto("maker")?.bytecode == nil, "a default that makes a function keeps the frame: the body runs in it, as a tree")
        let text = try Interpreter().disassemble("fn add(a, b) { return a + b }\nfn mk() { return fn() => 1 }", name: "t")
        #expect(text.contains("fn add: 2 parameters") && text.contains("binaryRR       r2 = r0 + r1"), "\(text)")
        #expect(text.contains("fn mk: 0 parameters, 0 slots, 1 registers in a heap frame"), "\(text)")
    }

    @Test func aCallsRegistersLetGoWhenItEnds() throws {
        let (i, _) = try session()
        try i.register(Builtin("probe()", doc: "A probe.") { _ in .host(Probe()) })
        let before = Probe.alive
        try i.run("fn keep() { let p = probe()\n  let q = [p, p]\n  return 1 }\nkeep()", name: "t")
        #expect(Probe.alive == before, "a finished call's registers still hold its values")
        #expect(throws: ScriptError.self) { try i.run("fn fail() { let p = probe()\n  return p + nil }\nfail()", name: "t") }
        #expect(Probe.alive == before, "a call ended by an error still holds its values")
        try i.run("fn deep(n) { let p = probe()\n  if n == 0 { return 0 }\n  return deep(n - 1) }\ndeep(300)", name: "t")
        #expect(Probe.alive == before)
    }

    /// A closure that a call makes and returns, then dropped, is freed at once: it is not left
    /// in a temporary of the heap frame it keeps (a cycle only the collector would free).
    @Test func aReturnedClosureIsFreedWhenDropped() throws {
        let (i, _) = try session()
        try i.register(Builtin("probe()", doc: "A probe.") { _ in .host(Probe()) })
        let before = Probe.alive
        try i.run("""
            fn adder(k) { let p = probe()
              return fn(x) => x + k }
            var s = 0
            for i in 0..<200 {
              s += adder(i)(1)
              s += (fn(k) => fn(x) => x * k)(2)(i)
            }
            """, name: "t")
        #expect(Probe.alive == before, "\(Probe.alive - before) frames of closures made and dropped are still alive")
    }

    /// A builtin replaced in its global while a call of it runs (by the script it calls back)
    /// finishes as the builtin it began as; the next call is the new value.
    @Test func aBuiltinReplacedWhileItRunsFinishes() throws {
        let (i, out) = try session()
        try i.register(Builtin("call_it(f)", doc: "Calls f.") { a in
            let r = try a.interpreter.callValue(a[0], [])
            return .list(ListRef([r, .string(a.callee.name)]))
        })
        try i.run("""
            fn swap() { call_it = fn(f) => "replaced"
              return 1 }
            fn use() { return [call_it(swap), call_it(swap)] }
            print(use())
            """, name: "t")
        #expect(out() == ["[[1, \"call_it\"], \"replaced\"]"], "\(out())")
    }

    /// `Value` is laid out as the VM reads it (if a compiler lays it out otherwise, nothing is
    /// compiled: everything still works as trees, only slower).
    @Test func valuesAreLaidOutAsTheVMReadsThem() {
        _ = Interpreter()  // (a session records the probe's answer)
        #expect(Raw.probe && Raw.ok)
        // The objects the VM reads in place, read as Swift's enum holds them.
        let l = ListRef([.int(1)])
        let q = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        defer { q.deinitialize(count: 1); q.deallocate() }
        q.initialize(to: .list(l))
        #expect(listAt(q)?.takeUnretainedValue() === l && mapAt(q) == nil && functionAt(q) == nil && builtinAt(q) == nil)
        q.pointee = .int(4)  // (an int whose word is not an address)
        #expect(listAt(q) == nil && mapAt(q) == nil)
        // Written as bytes, read by Swift's enum.
        let p = UnsafeMutablePointer<Value>.allocate(capacity: 1)
        defer { p.deinitialize(count: 1); p.deallocate() }
        p.initialize(to: .nil_)
        Raw.setInt(p, -42)
        #expect(Raw.tag(p) == Raw.intTag && Raw.int(p) == -42 && p.pointee.repr == "-42")
        Raw.setFloat(p, 2.5)
        #expect(Raw.float(p) == 2.5 && !Raw.holdsObject(p) && p.pointee.repr == "2.5")
        Raw.setBool(p, true)
        #expect(p.pointee.repr == "true")
        Raw.setNil(p)
        #expect(p.pointee.repr == "nil")
        p.pointee = .string("an object")
        #expect(Raw.holdsObject(p))
    }

    @Test func compiledAndTreeAgreeOnTheSameSession() throws {
        // The same functions, compiled and not, called from each other.
        for compiled in [true, false] {
            let (i, out) = try session()
            i.compilesFunctions = compiled
            try i.run("""
                fn fib(n) { if n < 2 { return n }
                  return fib(n - 1) + fib(n - 2) }
                fn sum(xs) { var s = 0
                  for x in xs { s += x }
                  return s }
                fn count(m) { var n = 0
                  for k in m { n += 1 }
                  return n }
                var total = 0
                fn bump(k) { total += k
                  return total }
                print(fib(15), sum([1, 2, 3]), count({"a": 1, "b": 2}), sum(0..<10), bump(2), bump(3), total)
                """, name: "t")
            #expect(out() == ["610 6 2 45 2 5 5"], "compiled \(compiled)")
        }
    }
}
