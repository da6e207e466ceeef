// The bytecode VM. A call of a compiled function from compiled code is a new window on one value
// stack and a jump: no frame object, no Swift recursion. Its semantics are the tree's: the same
// rules (`binary`, `indexValue`, `storeIndex`, `member`, `call`), the same checks of the interrupt
// and the step limit at loop rounds and calls, the same depth limit, errors located at the node
// an instruction came from, and a trace line for each call an error passes through.

import Foundation

/// The VM's registers: one allocation per session, every element always initialised (nil where
/// no call is using it), never moved, so that a window's address stays valid across calls; and
/// the records of the running calls.
final class ValueStack {
    private(set) var base: UnsafeMutablePointer<Value>
    private(set) var capacity: Int
    /// The first element no running call uses.
    var top = 0
    /// The running calls of compiled code, innermost last, and how many there are.
    fileprivate private(set) var calls: UnsafeMutablePointer<Call>
    fileprivate var callCount = 0
    private var callCapacity = 0

    init() {
        capacity = 0
        base = .allocate(capacity: 1)
        calls = .allocate(capacity: 1)
    }

    /// Room for `depth` calls of the largest window, made while nothing runs on the stack.
    func reserve(depth: Int) {
        let needed = (depth + 2) * BytecodeCompiler.maxRegisters
        guard top == 0, callCount == 0, needed > capacity else { return }
        base.deinitialize(count: capacity)
        base.deallocate()
        base = .allocate(capacity: needed)
        base.initialize(repeating: .nil_, count: needed)
        capacity = needed
        calls.deallocate()
        callCapacity = depth + 2
        calls = .allocate(capacity: callCapacity)
    }

    /// Whether one more call record fits (it does whenever the depth limit holds).
    @inline(__always) fileprivate var callRoom: Bool { callCount < callCapacity }

    /// Sets `count` registers from `start` back to nil (a call's window when it ends).
    @inline(__always) func clear(_ start: Int, _ count: Int) {
        var k = start
        while k < start + count { base[k] = .nil_; k += 1 }
    }

    deinit {
        base.deinitialize(count: capacity)
        base.deallocate()
        calls.deallocate()
    }
}

/// The state of a `for` over anything but a range: the items as they were when the loop began
/// (as the tree iterates them), or a host object's iterator.
final class LoopItems: HostObject {
    static let type = HostType("loop", doc: "A for loop's items.")
    var hostType: HostType { LoopItems.type }
    let items: [Value]
    var index = 0
    let next: (() throws -> Value?)?
    init(_ items: [Value]) { self.items = items; next = nil }
    init(next: @escaping () throws -> Value?) { items = []; self.next = next }
}

/// One running call of compiled code: plain data (its function is kept alive by the caller's
/// register that holds it, its chunk by the function), so that calls touch no reference counts.
fileprivate struct Call {
    unowned(unsafe) let fn: Function
    unowned(unsafe) let chunk: Chunk
    /// Its registers start here in the stack.
    let base: Int
    var pc = 0
    /// The caller's position after its call instruction, for the trace (-1: the call the VM
    /// was entered with, whose trace line `run` adds).
    let callerPC: Int
    /// Where the caller wants the result (an index in the stack).
    let result: Int
    /// The frame tree nodes see, made when the first one runs (released when the call ends).
    var view: Unmanaged<Frame>?
}

extension Interpreter {
    /// The compiled body of `proto`, made at its first call (nil: it runs as a tree).
    @inline(__always) func bytecode(_ proto: FunctionProto) -> Chunk? {
        if !proto.bytecodeTried {
            proto.bytecodeTried = true
            proto.bytecode = compilesFunctions ? BytecodeCompiler.compile(proto) : nil
        }
        return proto.bytecode
    }

    /// `bytecode` without a reference count on the chunk, for the VM's calls.
    @inline(__always) private func compiled(_ proto: FunctionProto) -> Unmanaged<Chunk>? {
        if proto.bytecodeTried { return proto.bytecode.map { Unmanaged.passUnretained($0) } }
        return bytecode(proto).map { Unmanaged.passUnretained($0) }
    }

    /// TRICKBOOK_VM=0 runs every function as a tree (to compare the two).
    public static let vmEnabled = ProcessInfo.processInfo.environment["TRICKBOOK_VM"] != "0"

    /// The unknown-name error of global `i`.
    func unknownGlobal(_ i: Int, at site: Node) -> ScriptError {
        let name = globalNames[i]
        return site.fail("unknown name '\(name)'\(didYouMean(name, definedGlobalNames))")
    }

    /// Runs compiled `fn` with its arguments in `frame` (a tree frame, bound as the tree binds
    /// them). The caller (`run`) has counted the call and adds its trace line.
    func execute(_ fn: Function, _ chunk: Chunk, arguments frame: Frame) throws -> Value {
        let stack = vmStack
        let entry = try reserve(chunk, stack)
        defer { stack.top = entry }
        for k in 0..<chunk.slots { stack.base[entry + k] = frame.slots[k] }
        return try execute(fn, chunk, at: entry, stack)
    }

    /// A call of compiled `fn` from a tree node or a builtin, as `run` makes one: `arguments`
    /// writes the arguments into the call's registers (evaluating them, which may call more),
    /// then the interrupt, the step limit and the depth are checked, and an error that comes
    /// out gains the call's trace line. No frame object is made.
    func callCompiled(_ fn: Function, _ chunk: Chunk, site: Node?, arguments: (UnsafeMutablePointer<Value>) throws -> Void) throws -> Value {
        let stack = vmStack, st = state
        let entry = try reserve(chunk, stack)
        defer { stack.top = entry }
        do {
            try arguments(stack.base + entry)
            if st.pointee.mustStop() {
                if st.pointee.budget < 0 { throw StepLimitExceeded() }
                throw ScriptInterrupted(file: site?.file, pos: site?.pos)
            }
            guard st.pointee.depth < maxDepth else {
                throw site?.fail("recursion depth exceeded (\(maxDepth))") ?? ScriptError("recursion depth exceeded (\(maxDepth))")
            }
        } catch {
            stack.clear(entry, chunk.registers)
            throw error
        }
        st.pointee.depth += 1
        defer { st.pointee.depth -= 1 }
        do {
            return try execute(fn, chunk, at: entry, stack)
        } catch var e as ScriptError {
            if let site { e.trace.append((fn.name, site.file, site.pos)) }
            throw e
        }
    }

    /// A window for `chunk` at the top of the stack (its registers all nil).
    private func reserve(_ chunk: Chunk, _ stack: ValueStack) throws -> Int {
        stack.reserve(depth: maxDepth)
        let entry = stack.top
        guard entry + chunk.registers <= stack.capacity, stack.callRoom else { throw ScriptError("recursion depth exceeded (\(maxDepth))") }
        stack.top = entry + chunk.registers
        return entry
    }

    /// Runs compiled `fn` in the window at `entry`, its arguments in place.
    private func execute(_ fn: Function, _ chunk: Chunk, at entry: Int, _ stack: ValueStack) throws -> Value {
        let entryCall = stack.callCount
        stack.calls[stack.callCount] = Call(fn: fn, chunk: chunk, base: entry, callerPC: -1, result: entry)
        stack.callCount += 1
        let st = state
        do {
            return try loop(stack, entryCall, st)
        } catch {
            // Every call of this entry ends here: its registers are cleared and the error gains
            // a trace line for each call above the entry, as the tree's `run` gives them.
            let top = stack.calls[stack.callCount - 1]
            var e = top.pc > 0 ? top.chunk.sites[top.pc - 1].locate(error) : error
            while stack.callCount > entryCall {
                let c = stack.calls[stack.callCount - 1]
                stack.clear(c.base, c.chunk.registers)
                c.view?.release()
                stack.callCount -= 1
                guard c.callerPC >= 0 else { break }
                st.pointee.depth -= 1
                let caller = stack.calls[stack.callCount - 1], site = caller.chunk.sites[c.callerPC - 1]
                if var se = e as? ScriptError { se.trace.append((c.fn.name, site.file, site.pos)); e = se }
            }
            throw e
        }
    }

    private func loop(_ stack: ValueStack, _ entryCall: Int, _ st: UnsafeMutablePointer<RuntimeState>) throws -> Value {
        let s = stack.base
        var cur = stack.calls + (stack.callCount - 1)
        var code = cur.pointee.chunk.instructions
        var r = s + cur.pointee.base
        var pc = 0
        defer { cur.pointee.pc = pc }
        while true {
            let i = code[pc]
            pc += 1
            switch i.op {
            case .loadK:
                r[Int(i.a)] = cur.pointee.chunk.constantValues[Int(i.b)]
            case .move:
                r[Int(i.a)] = r[Int(i.b)]
            case .getUpvalue:
                r[Int(i.a)] = upvalueSlots(cur.pointee.fn, r, Int(i.b))[Int(i.c)]
            case .setUpvalue:
                upvalueSlots(cur.pointee.fn, r, Int(i.b))[Int(i.c)] = r[Int(i.a)]
            case .getGlobal:
                let g = Int(i.b)
                guard st.pointee.defined[g] else { throw unknownGlobal(g, at: cur.pointee.chunk.sites[pc - 1]) }
                r[Int(i.a)] = st.pointee.globals[g]
            case .setGlobal:
                let g = Int(i.b)
                if i.c == 1, !st.pointee.defined[g] { throw unknownGlobal(g, at: cur.pointee.chunk.sites[pc - 1]) }
                st.pointee.globals[g] = r[Int(i.a)]
                st.pointee.defined[g] = true
            case .binary:
                let a = r[Int(i.b)], b = r[Int(i.c)], op = BinOp.at(i.sub)
                if case .int(let x) = a, case .int(let y) = b {
                    switch op {
                    case .add: let (v, o) = x.addingReportingOverflow(y); if !o { r[Int(i.a)] = .int(v); continue }
                    case .sub: let (v, o) = x.subtractingReportingOverflow(y); if !o { r[Int(i.a)] = .int(v); continue }
                    case .lt: r[Int(i.a)] = .bool(x < y); continue
                    case .gt: r[Int(i.a)] = .bool(x > y); continue
                    case .le: r[Int(i.a)] = .bool(x <= y); continue
                    case .ge: r[Int(i.a)] = .bool(x >= y); continue
                    case .eq: r[Int(i.a)] = .bool(x == y); continue
                    default: break
                    }
                } else if case .float(let x) = a, case .float(let y) = b {
                    switch op {
                    case .add: r[Int(i.a)] = .float(x + y); continue
                    case .sub: r[Int(i.a)] = .float(x - y); continue
                    case .mul: r[Int(i.a)] = .float(x * y); continue
                    case .div: r[Int(i.a)] = .float(x / y); continue
                    case .lt: r[Int(i.a)] = .bool(x < y); continue
                    case .gt: r[Int(i.a)] = .bool(x > y); continue
                    default: break
                    }
                }
                r[Int(i.a)] = try binary(op, a, b)
            case .update:
                let p = r + Int(i.a), rhs = r[Int(i.b)], op = BinOp.at(i.sub)
                if op == .add {
                    switch (p.pointee, rhs) {
                    case let (.float(x), .float(y)): p.pointee = .float(x + y); continue
                    case let (.float(x), .int(y)): p.pointee = .float(x + Double(y)); continue
                    case let (.int(x), .int(y)):
                        let (v, o) = x.addingReportingOverflow(y)
                        if !o { p.pointee = .int(v); continue }
                    default: break
                    }
                }
                p.pointee = try binary(op, p.pointee, rhs)
            case .neg:
                let v = r[Int(i.b)]
                switch v {
                case .int(let x):
                    guard x != Int.min else { throw cur.pointee.chunk.sites[pc - 1].fail("integer overflow") }
                    r[Int(i.a)] = .int(-x)
                case .float(let d): r[Int(i.a)] = .float(-d)
                default:
                    if case .host(let o) = v, let h = o.hostType.binary, let out = try h("neg", v, .nil_) { r[Int(i.a)] = out; continue }
                    throw cur.pointee.chunk.sites[pc - 1].fail("unsupported operand type for unary -: '\(v.typeName)'")
                }
            case .not:
                r[Int(i.a)] = .bool(!(try r[Int(i.b)].truth()))
            case .jump:
                pc = Int(i.a)
            case .jumpIfFalse:
                if case .bool(let b) = r[Int(i.a)] { if !b { pc = Int(i.b) } } else if !(try r[Int(i.a)].truth()) { pc = Int(i.b) }
            case .jumpIfTrue:
                if case .bool(let b) = r[Int(i.a)] { if b { pc = Int(i.b) } } else if try r[Int(i.a)].truth() { pc = Int(i.b) }
            case .jumpUnlessLess:
                if case .int(let x) = r[Int(i.a)], case .int(let y) = r[Int(i.b)] {
                    if !(x < y) { pc = Int(i.c) }
                } else if !(try binary(.lt, r[Int(i.a)], r[Int(i.b)]).truth()) {
                    pc = Int(i.c)
                }
            case .check:
                if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
            case .call:
                let a = Int(i.a), n = Int(i.b)
                if case .function(let fn) = r[a], fn.paramCount == n {
                    if let chunk = compiled(fn.unownedProto) {
                        // A compiled function from compiled code: a new window, and on.
                        if st.pointee.mustStop() {
                            if st.pointee.budget < 0 { throw StepLimitExceeded() }
                            let site = cur.pointee.chunk.sites[pc - 1]
                            throw ScriptInterrupted(file: site.file, pos: site.pos)
                        }
                        let base = stack.top
                        let chunk = chunk.takeUnretainedValue()
                        guard st.pointee.depth < maxDepth, base + chunk.registers <= stack.capacity, stack.callRoom else {
                            throw cur.pointee.chunk.sites[pc - 1].fail("recursion depth exceeded (\(maxDepth))")
                        }
                        let w = s + base
                        for k in 0..<n { w[k] = r[a + 1 + k] }
                        st.pointee.depth += 1
                        cur.pointee.pc = pc
                        stack.calls[stack.callCount] = Call(fn: fn, chunk: chunk, base: base, callerPC: pc, result: cur.pointee.base + a)
                        stack.callCount += 1
                        cur = stack.calls + (stack.callCount - 1)
                        stack.top = base + chunk.registers
                        code = chunk.instructions
                        r = w
                        pc = 0
                        continue
                    }
                    let frame = Frame.make(count: fn.proto.slotCount, parent: fn.env)
                    for k in 0..<n { frame.slots[k] = r[a + 1 + k] }
                    r[a] = try run(fn, frame, callSite: cur.pointee.chunk.sites[pc - 1])
                } else {
                    r[a] = try call(r[a], Array(UnsafeBufferPointer(start: r + a + 1, count: n)), [], site: cur.pointee.chunk.sites[pc - 1])
                }
            case .callMethod:
                let a = Int(i.a), n = Int(i.b), site = cur.pointee.chunk.sites[pc - 1]
                let m = try member(r[a], cur.pointee.chunk.constants[Int(i.c)].str)
                r[a] = try call(m, Array(UnsafeBufferPointer(start: r + a + 1, count: n)), [], site: site)
            case .ret, .retNil:
                let value = i.op == .ret ? r[Int(i.a)] : .nil_
                if let out = finish(value) { return out }
            case .index:
                r[Int(i.a)] = try indexValue(r[Int(i.b)], r[Int(i.c)])
            case .setIndex:
                let o = r[Int(i.a)], k = r[Int(i.b)]
                var v = r[Int(i.c)]
                if i.sub != 0 { v = try binary(BinOp.at(i.sub - 1), try indexValue(o, k), v) }
                try storeIndex(o, k, v)
            case .forPrep:
                let a = Int(i.a), site = cur.pointee.chunk.sites[pc - 1]
                switch r[a] {
                case .range(let lo, let hi, _): r[a + 1] = .int(lo); r[a + 2] = .int(hi)
                case .list(let l): r[a + 1] = .nil_; r[a] = .host(LoopItems(l.items))
                case .map(let m): r[a + 1] = .nil_; r[a] = .host(LoopItems(m.keys))
                case .string(let text):
                    r[a + 1] = .nil_
                    var it = text.makeIterator()
                    r[a] = .host(LoopItems(next: { it.next().map { .string(String($0)) } }))
                case .host(let o):
                    guard let make = o.hostType.iterate else { throw site.fail("\(o.hostType.name) is not iterable") }
                    r[a + 1] = .nil_
                    r[a] = .host(LoopItems(next: try make(o)))
                default:
                    throw site.fail("\(r[a].typeName) is not iterable")
                }
            case .forNext:
                let a = Int(i.a)
                let item: Value
                if case .int(let k) = r[a + 1], case .int(let hi) = r[a + 2] {
                    guard k < hi else { pc = Int(i.c); continue }
                    r[a + 1] = .int(k + 1)
                    item = .int(k)
                } else if case .host(let o) = r[a], let loop = o as? LoopItems {
                    if loop.index < loop.items.count {
                        item = loop.items[loop.index]
                        loop.index += 1
                    } else if let next = loop.next, let v = try next() {
                        item = v
                    } else {
                        pc = Int(i.c)
                        continue
                    }
                } else {
                    pc = Int(i.c)
                    continue
                }
                if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
                r[Int(i.b)] = item
            case .eval:
                r[Int(i.a)] = try cur.pointee.chunk.exprs[Int(i.b)].eval(view(cur, r))
            case .exec:
                switch try cur.pointee.chunk.stmts[Int(i.a)].exec(view(cur, r)) {
                case .normal: break
                case .breakLoop: pc = Int(i.b)
                case .continueLoop: pc = Int(i.c)
                case .returnValue:
                    let value = st.pointee.returned
                    st.pointee.returned = .nil_
                    if let out = finish(value) { return out }
                }
            }
        }

        /// Ends the current call with `value`: on in the caller, or out of the VM (the value).
        func finish(_ value: Value) -> Value? {
            let done = cur.pointee
            stack.clear(done.base, done.chunk.registers)
            done.view?.release()
            stack.callCount -= 1
            if stack.callCount == entryCall { return value }
            st.pointee.depth -= 1
            s[done.result] = value
            cur = stack.calls + (stack.callCount - 1)
            stack.top = cur.pointee.base + cur.pointee.chunk.registers
            code = cur.pointee.chunk.instructions
            r = s + cur.pointee.base
            pc = cur.pointee.pc
            return nil
        }
    }

    /// The frame the tree nodes of a compiled call see: its registers are the slots.
    @inline(__always) private func view(_ c: UnsafeMutablePointer<Call>, _ r: UnsafeMutablePointer<Value>) -> Frame {
        if let v = c.pointee.view { return v.takeUnretainedValue() }
        let v = Frame.view(of: r, parent: c.pointee.fn.env)
        c.pointee.view = Unmanaged.passRetained(v)
        return v
    }

    /// The slots of the frame `depth` levels out of a compiled call (the tree's `ancestor`).
    @inline(__always) private func upvalueSlots(_ fn: Function, _ r: UnsafeMutablePointer<Value>, _ depth: Int) -> UnsafeMutablePointer<Value> {
        guard depth > 0, let env = fn.env else { return r }
        return env.ancestor(depth - 1).slots
    }
}

extension Interpreter {
    /// The bytecode of each function `source` declares with `fn` (at the top and inside other
    /// functions), or why it runs as a tree: what `trickbook disasm` prints. Nothing runs.
    public func disassemble(_ source: String, name: String) throws -> String {
        var compiler = try Compiler(ctx: self, file: SourceFile(name: name, text: source))
        let (body, _) = try compiler.compileChunk()
        var out: [String] = []
        var pending: [Stmt] = Array(body)
        while !pending.isEmpty {
            let s = pending.removeFirst()
            guard let a = s as? AssignStmt, let f = a.value as? FunctionExpr else { continue }
            let p = f.proto
            if let chunk = BytecodeCompiler.compile(p) {
                out.append(chunk.disassembly(name: p.name, globals: globalNames))
            } else {
                let why = p.makesClosures ? "it makes functions" : !p.defaults.allSatisfy({ $0 == nil }) ? "it has default arguments"
                    : p.body.isEmpty ? "its body is empty" : "it needs more than \(BytecodeCompiler.maxRegisters) registers"
                out.append("fn \(p.name): runs as a tree (\(why))")
            }
            pending.append(contentsOf: p.body)
        }
        return out.isEmpty ? "\(name): no functions" : out.joined(separator: "\n\n")
    }
}
