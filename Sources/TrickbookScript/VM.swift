// The bytecode VM. A call of a compiled function from compiled code is a new window on one value
// stack and a jump: no frame object, no Swift recursion. Its semantics are the tree's: the same
// rules (`binary`, `indexValue`, `storeIndex`, `member`, `call`), the same checks of the interrupt
// and the step limit at loop rounds and calls, the same depth limit, errors located at the node
// an instruction came from, and a trace line for each call an error passes through.

import Foundation

extension Interpreter {
    /// The compiled body of `proto`, made at its first call (nil: it runs as a tree).
    @inline(__always) func bytecode(_ proto: FunctionProto) -> Chunk? {
        if !proto.bytecodeTried {
            proto.bytecodeTried = true
            // (the VM reads numbers and objects as bytes: where `Value` is laid out otherwise,
            // every function runs as a tree)
            proto.bytecode = compilesFunctions && Raw.ok ? BytecodeCompiler.compile(proto) : nil
        }
        return proto.bytecode
    }

    /// Gives global `i` the value `v`; a function it held that may be running from a
    /// `callGlobal` is kept until the VM is left (see `ValueStack.retired`).
    func storeGlobal(_ i: Int, _ v: Value) {
        if state.pointee.defined[i] { vmStack.retire(state.pointee.globals[i]) }
        state.pointee.globals[i] = v
        state.pointee.defined[i] = true
    }

    /// Bytes of the VM's data, for `trickbook bench script`: a value (a register, a list's item),
    /// the record of a running call (its registers are `value` bytes each, in the stack's
    /// segments: a call of a function that makes no closures allocates nothing), and a map's
    /// entry (its key, its value, its hash, and two to four slots of its index).
    public static var layout: (value: Int, callRecord: Int, mapEntry: ClosedRange<Int>) {
        let v = MemoryLayout<Value>.stride
        return (v, MemoryLayout<Call>.stride, (2 * v + 8 + 2 * 8)...(2 * v + 8 + 4 * 8))
    }

    /// TRICKBOOK_VM=0 runs every function as a tree (to compare the two).
    public static let vmEnabled = ProcessInfo.processInfo.environment["TRICKBOOK_VM"] != "0"

    /// The unknown-name error of global `i`.
    func unknownGlobal(_ i: Int, at site: Node) -> ScriptError {
        let name = globalNames[i]
        return site.fail("unknown name '\(name)'\(didYouMean(name, definedGlobalNames))")
    }

    /// Registers for a call of `entry`'s chunk: a window at the top of the stack (all nil), or,
    /// when its frame may outlive it (it makes functions; a cell's top level), a new heap frame.
    @inline(__always) private func registers(_ fn: Unmanaged<Function>, _ entry: UnsafePointer<Chunk.Entry>, _ stack: ValueStack) throws
        -> (regs: UnsafeMutablePointer<Value>, window: Int, frame: Unmanaged<Frame>?) {
        guard stack.callRoom else { throw ScriptError("recursion depth exceeded (\(maxDepth))") }
        if entry.pointee.onHeap {
            let f = Frame.make(count: entry.pointee.registers, parent: fn.takeUnretainedValue().env)
            return (f.slots, -1, Unmanaged.passRetained(f))
        }
        let (start, regs) = stack.window(entry.pointee.registers)
        return (regs, start, nil)
    }

    /// The record of a call the VM is entered with, its registers made (see `registers`).
    private func entry(_ fn: Function, _ chunk: Chunk, _ stack: ValueStack) throws -> Call {
        let f = Unmanaged.passUnretained(fn), e = UnsafePointer(chunk.entry)
        stack.reserve(depth: maxDepth)  // (room for the calls it will make: only while none runs)
        let (regs, window, held) = try registers(f, e, stack)
        return Call(fnRef: f, entry: e, regs: regs, window: window, top: stack.top, callerPC: -1, result: regs, frame: held)
    }

    /// Runs compiled `fn` with its arguments in `frame` (a tree frame, bound as the tree binds
    /// them). The caller (`run`) has counted the call and adds its trace line.
    func execute(_ fn: Function, _ chunk: Chunk, arguments frame: Frame) throws -> Value {
        let stack = vmStack, top = stack.top
        defer { stack.top = top }
        let call = try entry(fn, chunk, stack)
        for k in 0..<chunk.slots { call.regs[k] = frame.slots[k] }
        return try execute(call, stack)
    }

    /// A call of compiled `fn` from a tree node or a builtin, as `run` makes one: `arguments`
    /// writes the arguments into the call's registers (evaluating them, which may call more),
    /// then the interrupt, the step limit and the depth are checked, and an error that comes
    /// out gains the call's trace line. No frame object is made unless the function needs one.
    func callCompiled(_ fn: Function, _ chunk: Chunk, site: Node?, arguments: (UnsafeMutablePointer<Value>) throws -> Void) throws -> Value {
        let stack = vmStack, st = state, top = stack.top
        defer { stack.top = top }
        let call = try entry(fn, chunk, stack)
        do {
            try arguments(call.regs)
            if st.pointee.mustStop() {
                if st.pointee.budget < 0 { throw StepLimitExceeded() }
                throw ScriptInterrupted(file: site?.file, pos: site?.pos)
            }
            guard st.pointee.depth < maxDepth else {
                throw site?.fail("recursion depth exceeded (\(maxDepth))") ?? ScriptError("recursion depth exceeded (\(maxDepth))")
            }
        } catch {
            call.end(stack)
            throw error
        }
        st.pointee.depth += 1
        defer { st.pointee.depth -= 1 }
        do {
            return try execute(call, stack)
        } catch var e as ScriptError {
            if let site { e.trace.append((fn.name, site.file, site.pos)) }
            throw e
        }
    }

    /// Runs a cell's top level, compiled, on a heap frame of its own (the functions it makes
    /// keep it). Its expression statements leave their value in `lastValue`, as the tree does.
    func executeTopLevel(_ chunk: Chunk, file: SourceFile) throws {
        let fn = Function(proto: FunctionProto(name: "<top level>", params: [], defaults: [], file: file, pos: SourcePos(line: 1, column: 1)), env: nil)
        let stack = vmStack, top = stack.top
        defer { stack.top = top }
        _ = try withExtendedLifetime(fn) { try execute(try entry(fn, chunk, stack), stack) }
    }

    /// Runs `entry`, its arguments in place, until it returns.
    private func execute(_ entry: Call, _ stack: ValueStack) throws -> Value {
        let entryCall = stack.callCount
        stack.calls[stack.callCount] = entry
        stack.callCount += 1
        let st = state
        defer { if stack.callCount == 0, !stack.retired.isEmpty { stack.retired = [] } }
        while true {
            do {
                return try loop(stack, entryCall, st)
            } catch {
                let top = stack.calls[stack.callCount - 1]
                let e = top.pc > 0 ? top.chunk.sites[top.pc - 1].locate(error) : error
                // A script error with a `try` of this entry around it: the calls above the try's
                // let go, and on at its handler with the error (as the tree's TryStmt).
                if let se = e as? ScriptError, let h = stack.handlers.last, h.call >= entryCall {
                    stack.handlers.removeLast()
                    while stack.callCount - 1 > h.call {
                        stack.calls[stack.callCount - 1].end(stack)
                        stack.callCount -= 1
                    }
                    st.pointee.depth = h.depth
                    let c = stack.calls + h.call
                    stack.top = c.pointee.top
                    c.pointee.pc = h.pc
                    c.pointee.regs[h.error] = .error(ErrorValue(message: se.message, line: (se.pos?.line ?? 0) + (se.file?.lineOffset ?? 0)))
                    continue
                }
                throw unwind(e, stack, entryCall, st)
            }
        }
    }

    /// Ends every call of the entry at `entryCall` for an error going out of it: their registers
    /// are let go, their `try`s dropped, and the error gains a trace line for each call above the
    /// entry, as the tree's `run` gives them.
    private func unwind(_ error: Error, _ stack: ValueStack, _ entryCall: Int, _ st: UnsafeMutablePointer<RuntimeState>) -> Error {
        var e = error
        while let h = stack.handlers.last, h.call >= entryCall { stack.handlers.removeLast() }
        while stack.callCount > entryCall {
            let c = stack.calls[stack.callCount - 1]
            c.end(stack)
            stack.callCount -= 1
            guard c.callerPC >= 0 else { break }
            st.pointee.depth -= 1
            let caller = stack.calls[stack.callCount - 1], site = caller.chunk.sites[c.callerPC - 1]
            if var se = e as? ScriptError { se.trace.append((c.fn.name, site.file, site.pos)); e = se }
        }
        return e
    }

    private func loop(_ stack: ValueStack, _ entryCall: Int, _ st: UnsafeMutablePointer<RuntimeState>) throws -> Value {
        var cur = stack.calls + (stack.callCount - 1)
        var code = cur.pointee.entry.pointee.code
        var k = cur.pointee.entry.pointee.constants
        var r = cur.pointee.regs
        var pc = cur.pointee.pc
        defer { cur.pointee.pc = pc }
        while true {
            let i = code[pc]
            pc &+= 1
            switch i.op {
            case .loadK:
                move(r + Int(i.a), k + Int(i.b))
            case .move:
                move(r + Int(i.a), r + Int(i.b))
            case .getGlobal:
                let g = Int(i.b)
                guard st.pointee.defined[g] else { throw unknownGlobal(g, at: cur.pointee.chunk.sites[pc - 1]) }
                move(r + Int(i.a), st.pointee.globals + g)
            case .setGlobal:
                let g = Int(i.b)
                if i.c == 1, !st.pointee.defined[g] { throw unknownGlobal(g, at: cur.pointee.chunk.sites[pc - 1]) }
                if st.pointee.defined[g], !Raw.holdsObject(st.pointee.globals + g), !Raw.holdsObject(r + Int(i.a)) {
                    Raw.copy(st.pointee.globals + g, r + Int(i.a))  // a number over a number: nothing to retire
                } else {
                    storeGlobal(g, r[Int(i.a)])
                }
            case .binaryRR, .binaryRK, .binary:
                // (one case for the three, the operands found by the form: three cases calling
                // one helper measured slower, the loop's code laid out worse)
                let pa = i.op != .binary || i.b >= 0 ? r + Int(i.b) : k + Int(-i.b - 1)
                let pb = i.op == .binaryRR ? r + Int(i.c) : i.op == .binaryRK ? k + Int(i.c) : i.c >= 0 ? r + Int(i.c) : k + Int(-i.c - 1)
                let dst = r + Int(i.a)
                if !Raw.holdsObject(dst), rawBinaryCall(i.sub, pa, pb, into: dst) { continue }
                let a = pa.pointee, b = pb.pointee, op = BinOp.at(i.sub)
                r[Int(i.a)] = try quickBinary(op, a, b) ?? binary(op, a, b)
            case .updateI:
                try updateByInt(r + Int(i.a), i.sub, Int(i.b))
            case .updateGlobalI:
                let g = Int(i.a)
                guard st.pointee.defined[g] else { throw unknownGlobal(g, at: cur.pointee.chunk.sites[pc - 1]) }
                try updateByInt(st.pointee.globals + g, i.sub, Int(i.b))
            case .binaryI:
                let pa = r + Int(i.b), dst = r + Int(i.a)
                if Raw.tag(pa) == Raw.intTag, !Raw.holdsObject(dst), let s = plusInt(i.sub, Raw.int(pa), Int(i.c)) {
                    Raw.setInt(dst, s)
                    continue
                }
                let a = pa.pointee, b = Value.int(Int(i.c)), op = BinOp.at(i.sub)
                r[Int(i.a)] = try quickBinary(op, a, b) ?? binary(op, a, b)
            case .jumpUnlessI:
                let pa = r + Int(i.a)
                if Raw.tag(pa) == Raw.intTag, let holds = BinOp.compare(i.sub, Raw.int(pa), Int(i.b)) {
                    if !holds { pc = Int(i.c) }
                    continue
                }
                let a = pa.pointee, b = Value.int(Int(i.b)), op = BinOp.at(i.sub)
                if let holds = quickCompare(op, a, b) {
                    if !holds { pc = Int(i.c) }
                } else if !(try binary(op, a, b).truth()) {
                    pc = Int(i.c)
                }
            case .updateK:
                let pb = k + Int(i.b), dst = r + Int(i.a)
                if rawBinary(i.sub, dst, pb, into: dst) { continue }
                try updateInPlace(dst, BinOp.at(i.sub), pb.pointee)
            case .update:
                let pb = i.b >= 0 ? r + Int(i.b) : k + Int(-i.b - 1), dst = r + Int(i.a)
                if rawBinary(i.sub, dst, pb, into: dst) { continue }
                try updateInPlace(dst, BinOp.at(i.sub), pb.pointee)
            case .updateGlobal:
                let g = Int(i.a)
                guard st.pointee.defined[g] else { throw unknownGlobal(g, at: cur.pointee.chunk.sites[pc - 1]) }
                let pb = i.b >= 0 ? r + Int(i.b) : k + Int(-i.b - 1), dst = st.pointee.globals + g
                if rawBinary(i.sub, dst, pb, into: dst) { continue }
                try updateInPlace(dst, BinOp.at(i.sub), pb.pointee)
            case .jump:
                pc = Int(i.a)
            case .jumpIfFalse:
                if case .bool(let b) = r[Int(i.a)] { if !b { pc = Int(i.b) } } else if !(try r[Int(i.a)].truth()) { pc = Int(i.b) }
            case .jumpIfTrue:
                if case .bool(let b) = r[Int(i.a)] { if b { pc = Int(i.b) } } else if try r[Int(i.a)].truth() { pc = Int(i.b) }
            case .jumpUnless:
                let pa = i.a >= 0 ? r + Int(i.a) : k + Int(-i.a - 1), pb = i.b >= 0 ? r + Int(i.b) : k + Int(-i.b - 1)
                if let holds = rawCompare(i.sub, pa, pb) {
                    if !holds { pc = Int(i.c) }
                    continue
                }
                let a = pa.pointee, b = pb.pointee
                if let holds = quickCompare(BinOp.at(i.sub), a, b) {
                    if !holds { pc = Int(i.c) }
                } else if !(try binary(BinOp.at(i.sub), a, b).truth()) {
                    pc = Int(i.c)
                }
            case .check:
                if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
            case .loopIf:
                let pa = i.a >= 0 ? r + Int(i.a) : k + Int(-i.a - 1), pb = i.b >= 0 ? r + Int(i.b) : k + Int(-i.b - 1)
                let holds: Bool
                if let h = rawCompare(i.sub, pa, pb) {
                    holds = h
                } else {
                    let a = pa.pointee, b = pb.pointee
                    if let h = quickCompare(BinOp.at(i.sub), a, b) { holds = h } else { holds = try binary(BinOp.at(i.sub), a, b).truth() }
                }
                if holds {
                    if st.pointee.mustStop() {
                        let c = cur.pointee.chunk
                        throw (c.stopSites[pc - 1] ?? c.sites[pc - 1]).stopError()
                    }
                    pc = Int(i.c)
                }
            case .loopIfI:
                let pa = r + Int(i.a)
                let holds: Bool
                if Raw.tag(pa) == Raw.intTag, let h = BinOp.compare(i.sub, Raw.int(pa), Int(i.b)) {
                    holds = h
                } else {
                    let a = pa.pointee, b = Value.int(Int(i.b)), op = BinOp.at(i.sub)
                    if let h = quickCompare(op, a, b) { holds = h } else { holds = try binary(op, a, b).truth() }
                }
                if holds {
                    if st.pointee.mustStop() {
                        let c = cur.pointee.chunk
                        throw (c.stopSites[pc - 1] ?? c.sites[pc - 1]).stopError()
                    }
                    pc = Int(i.c)
                }
            case .method:
                let a = Int(i.a)
                if i.sub == 1, listAt(r + a) != nil {
                    put(r + a + 1, .nil_)  // a list's append: `callResolved` does it
                    continue
                }
                if copyMapItem(r + a, cur.pointee.entry.pointee.keys + Int(i.c), into: r + a + 1) {
                    r[a] = .nil_
                } else if let m = declaredMethod(r[a], k[Int(i.c)].str) {
                    r[a + 1] = .builtin(m)
                } else {
                    r[a + 1] = try member(r[a], k[Int(i.c)].str)
                    r[a] = .nil_
                }
            case .callResolved:
                let a = Int(i.a), n = Int(i.b)
                if i.sub == 1, let l = listAt(r + a), !Raw.holdsObject(r + a + 1) {
                    if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
                    try append(moving: r + a + 2, to: l)
                    r[a] = .nil_
                    continue
                }
                if case .nil_ = r[a] {
                    if let (fn, callee) = compiledCallee(r + a + 1, n) {
                        var h = Here(cur: cur, code: code, k: k, r: r, pc: pc)
                        try enter(fn, callee, args: r + a + 2, result: r + a, &h, stack, st)
                        (cur, code, k, r, pc) = (h.cur, h.code, h.k, h.r, h.pc)
                        continue
                    }
                    r[a] = try call(r[a + 1], Array(UnsafeBufferPointer(start: r + a + 2, count: n)), [], site: cur.pointee.chunk.sites[pc - 1])
                } else if case .builtin(let m) = r[a + 1] {
                    if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
                    r[a] = try callBuiltin(m, r + a + 2, n, receiver: r[a], stack)
                }
            case .callMethodOn:
                // A function the map holds is called from a register holding it (a count on it
                // alone: the map stays where it is); anything else goes on as `callMethod` with
                // the value in the receiver's place.
                let a = Int(i.a), at = code[pc], g = Int(at.a), po = at.b == 1 ? r + g : st.pointee.globals + g
                pc &+= 1  // (its `operand`, which has the same site)
                if at.b == 0, !st.pointee.defined[g] { throw unknownGlobal(g, at: cur.pointee.chunk.sites[pc - 1]) }
                if i.sub == 1, let l = listAt(po) {
                    // A list's append (`append`), the list not copied to a register.
                    if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
                    try append(moving: r + a + 1, to: l)
                    put(r + a, .nil_)
                    continue
                }
                if copyMapItem(po, cur.pointee.entry.pointee.keys + Int(i.c), into: r + a) {
                    if let (fn, callee) = compiledCallee(r + a, Int(i.b)) {
                        var h = Here(cur: cur, code: code, k: k, r: r, pc: pc)
                        try enter(fn, callee, args: r + a + 1, result: r + a, &h, stack, st)
                        (cur, code, k, r, pc) = (h.cur, h.code, h.k, h.r, h.pc)
                        continue
                    }
                    r[a] = try call(r[a], Array(UnsafeBufferPointer(start: r + a + 1, count: Int(i.b))), [], site: cur.pointee.chunk.sites[pc - 1])
                    continue
                }
                put(r + a, po.pointee)
                fallthrough
            case .callMethod:
                // A function a map holds under the name (`m.name` is the key's value first, as in
                // `member`) is called as `call` calls one: on to `call`, with it in the receiver's place.
                if copyMapItem(r + Int(i.a), cur.pointee.entry.pointee.keys + Int(i.c), into: stack.spare) {
                    // (through a spare register: the map may have its last count in r[a])
                    r[Int(i.a)] = stack.spare.move()
                    stack.spare.initialize(to: .nil_)
                    fallthrough
                }
                let a = Int(i.a), n = Int(i.b), name = k[Int(i.c)].str, o = r[a]
                if let method = declaredMethod(o, name) {
                    // What `member` and `call` do for a method, without binding a copy of it first
                    // (the site is read only for a stop: errors are located as the loop leaves).
                    if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
                    r[a] = try callBuiltin(method, r + a + 1, n, receiver: o, stack)
                } else {
                    r[a] = try call(try member(o, name), Array(UnsafeBufferPointer(start: r + a + 1, count: n)), [], site: cur.pointee.chunk.sites[pc - 1])
                }
            case .callGlobal:
                if i.op == .callGlobal {  // (`callMethod` comes through here on its way to `call`)
                    let a = Int(i.a), g = Int(i.c)
                    if let (fn, callee) = compiledCallee(st.pointee.globals + g, Int(i.b)) {
                        // The function stays in its global, held there (or, replaced while it
                        // runs, in `retired`): the call needs no register and no reference count.
                        var h = Here(cur: cur, code: code, k: k, r: r, pc: pc)
                        try enter(fn, callee, args: r + a + 1, result: r + a, &h, stack, st)
                        (cur, code, k, r, pc) = (h.cur, h.code, h.k, h.r, h.pc)
                        continue
                    }
                    if let b = builtinAt(st.pointee.globals + g) {
                        // A builtin: called as `call` calls one, without its value in a register.
                        if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
                        if i.b == 1, let v = b._withUnsafeGuaranteedRef({ $0.fast?(r[a + 1]) }) {
                            put(r + a, v)  // a builtin of one value, on its fast path
                            continue
                        }
                        do {
                            put(r + a, try b._withUnsafeGuaranteedRef { try callBuiltin($0, r + a + 1, Int(i.b), receiver: nil, stack) })
                        } catch { throw cur.pointee.chunk.sites[pc - 1].locate(error) }
                        continue
                    }
                    r[a] = st.pointee.globals[g]
                }
                fallthrough
            case .call:
                let a = Int(i.a), n = Int(i.b)
                if let (fn, callee) = compiledCallee(r + a, n) {
                    var h = Here(cur: cur, code: code, k: k, r: r, pc: pc)
                    try enter(fn, callee, args: r + a + 1, result: r + a, &h, stack, st)
                    (cur, code, k, r, pc) = (h.cur, h.code, h.k, h.r, h.pc)
                    continue
                }
                if case .function(let fn) = r[a], fn.paramCount == n {
                    let frame = Frame.make(count: fn.proto.slotCount, parent: fn.env)
                    for k in 0..<n { frame.slots[k] = r[a + 1 + k] }
                    r[a] = try run(fn, frame, callSite: cur.pointee.chunk.sites[pc - 1])
                } else {
                    r[a] = try call(r[a], Array(UnsafeBufferPointer(start: r + a + 1, count: n)), [], site: cur.pointee.chunk.sites[pc - 1])
                }
            case .append:
                // What `call` and the core library's list append do (CoreLibrary.swift): count a
                // step, check the size, append, let the collector know.
                let a = Int(i.a)
                if let l = listAt(r + a) {
                    if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
                    try append(moving: r + a + 1, to: l)
                    r[a] = .nil_
                    continue
                }
                let site = cur.pointee.chunk.sites[pc - 1]
                let m = try member(r[a], "append")
                r[a] = try call(m, [r[a + 1]], [], site: site)
            case .ret:
                let src = i.a >= 0 ? r + Int(i.a) : k + Int(-i.a - 1)
                if stack.callCount - 1 > entryCall, !Raw.holdsObject(src), !Raw.holdsObject(cur.pointee.result) {
                    // A number, bool or nil back to compiled code: copied as bytes before the
                    // call's registers are let go.
                    Raw.copy(cur.pointee.result, src)
                    var h = Here(cur: cur, code: code, k: k, r: r, pc: pc)
                    _ = finish(nil, &h, stack, entryCall, st)
                    (cur, code, k, r, pc) = (h.cur, h.code, h.k, h.r, h.pc)
                    continue
                }
                var h = Here(cur: cur, code: code, k: k, r: r, pc: pc)
                if let out = finish(src.pointee, &h, stack, entryCall, st) { return out }
                (cur, code, k, r, pc) = (h.cur, h.code, h.k, h.r, h.pc)
            case .retNil:
                var h = Here(cur: cur, code: code, k: k, r: r, pc: pc)
                if let out = finish(.nil_, &h, stack, entryCall, st) { return out }
                (cur, code, k, r, pc) = (h.cur, h.code, h.k, h.r, h.pc)
            case .index, .indexGlobal:
                let po: UnsafeMutablePointer<Value>, pk = i.c >= 0 ? r + Int(i.c) : k + Int(-i.c - 1)
                if i.op == .index {
                    po = i.b >= 0 ? r + Int(i.b) : k + Int(-i.b - 1)
                } else {
                    guard st.pointee.defined[Int(i.b)] else { throw unknownGlobal(Int(i.b), at: cur.pointee.chunk.sites[pc - 1]) }
                    po = st.pointee.globals + Int(i.b)
                }
                if Raw.tag(pk) == Raw.intTag, r + Int(i.a) != po, let l = listAt(po) {
                    // A list's item at an int in range, copied in place (anything else: `indexValue`;
                    // and a store over the list's own register, which may hold its last reference).
                    let n = Raw.int(pk), dst = r + Int(i.a)
                    let done: Bool = l._withUnsafeGuaranteedRef { l in
                        guard n >= 0, n < l.items.count else { return false }
                        put(dst, l.items[n])
                        return true
                    }
                    if done { continue }
                }
                if let m = mapAt(po) {
                    // A map's item read without counting the map (what `indexValue` does for maps).
                    guard let v = try m._withUnsafeGuaranteedRef({ try $0.get(pk.pointee) }) else {
                        throw ScriptError("key \(pk.pointee.repr) not in map")
                    }
                    put(r + Int(i.a), v)
                    continue
                }
                r[Int(i.a)] = try indexValue(po.pointee, pk.pointee)
            case .setIndex:
                if i.sub == 0, let m = mapAt(r + Int(i.a)) {
                    // A map's item set without counting the map (what `storeIndex` does for maps).
                    try m._withUnsafeGuaranteedRef { try $0.set(r[Int(i.b)], r[Int(i.c)]) }
                    continue
                }
                let o = r[Int(i.a)], k = r[Int(i.b)]
                var v = r[Int(i.c)]
                if i.sub != 0 { v = try binary(BinOp.at(i.sub - 1), try indexValue(o, k), v) }
                try storeIndex(o, k, v)
            case .forNext:
                let a = Int(i.a)
                if Raw.tag(r + a + 1) == Raw.intTag, Raw.tag(r + a + 2) == Raw.intTag, !Raw.holdsObject(r + Int(i.b)) {
                    // A range's next int, in place.
                    let n = Raw.int(r + a + 1)
                    guard n < Raw.int(r + a + 2) else { pc = Int(i.c); continue }
                    Raw.setInt(r + a + 1, n + 1)
                    if st.pointee.mustStop() { throw cur.pointee.chunk.sites[pc - 1].stopError() }
                    Raw.setInt(r + Int(i.b), n)
                    continue
                }
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
            case .exec:
                switch try cur.pointee.chunk.stmts[Int(i.a)].exec(view(cur, r)) {
                case .normal: break
                case .breakLoop:
                    stack.endTries(Int(i.sub))  // the `try`s the jump leaves
                    pc = Int(i.b)
                case .continueLoop:
                    stack.endTries(Int(i.sub))
                    pc = Int(i.c)
                case .returnValue:
                    let value = st.pointee.returned
                    st.pointee.returned = .nil_
                    var h = Here(cur: cur, code: code, k: k, r: r, pc: pc)
                    if let out = finish(value, &h, stack, entryCall, st) { return out }
                    (cur, code, k, r, pc) = (h.cur, h.code, h.k, h.r, h.pc)
                }
            case .keep where i.sub == 0:
                // An expression statement's value kept as the session's last (one in a loop at
                // a cell's top level runs every round: here, not in `cold`, and as bytes).
                if let last = st.pointer(to: \.lastValue) { Raw.assign(last, r + Int(i.a)) }
            case .getUpvalue, .setUpvalue, .neg, .not, .unpack, .keep, .operand, .forPrep, .range, .list, .newMap, .slice, .multiIndex, .setMember, .assertFailed, .setSubscript, .member, .interpolate, .closure, .callKeywords, .raise, .eval, .tryBegin, .tryEnd:
                try cold(i, pc, r, k, cur, stack, st)
            }

        }
    }

    /// The instructions the loop runs rarely, out of its way: kept inline, they made the loop's
    /// function so large that its position and registers left the machine's registers.
    @inline(never)
    private func cold(_ i: Instr, _ pc: Int, _ r: UnsafeMutablePointer<Value>, _ k: UnsafeMutablePointer<Value>, _ cur: UnsafeMutablePointer<Call>,
                      _ stack: ValueStack, _ st: UnsafeMutablePointer<RuntimeState>) throws {
        switch i.op {
        case .getUpvalue:
            r[Int(i.a)] = upvalueSlots(cur.pointee.fn, r, Int(i.b))[Int(i.c)]
        case .setUpvalue:
            upvalueSlots(cur.pointee.fn, r, Int(i.b))[Int(i.c)] = r[Int(i.a)]
        case .neg:
            r[Int(i.a)] = try negate(r[Int(i.b)])
        case .not:
            r[Int(i.a)] = .bool(!(try r[Int(i.b)].truth()))
        case .unpack:
            guard case .list(let pair) = r[Int(i.a)], pair.items.count == 2 else {
                throw ScriptError("'for a, b in …' needs pairs (2-element lists), got \(r[Int(i.a)].repr)")
            }
            r[Int(i.b)] = pair.items[0]
            r[Int(i.c)] = pair.items[1]
        case .keep:
            st.pointee.lastValue = r[Int(i.a)]
            if i.sub == 1 { echo?(r[Int(i.a)]) }
        case .forPrep:
            let a = Int(i.a), site = cur.pointee.chunk.sites[pc - 1]
            switch r[a] {
            case .range(let lo, let hi, _): r[a + 1] = .int(lo); r[a + 2] = .int(hi)
            case .list(let l): r[a + 1] = .nil_; r[a] = .host(LoopItems(l.items))
            case .map(let m):
                r[a + 1] = .nil_
                if i.sub == 1 {
                    // [key, value] pairs, made one at a time from the map as it was (as the tree does)
                    let keys = m.keys, values = m.values
                    var j = 0
                    r[a] = .host(LoopItems(next: {
                        guard j < keys.count, j < values.count else { return nil }
                        defer { j += 1 }
                        return .list(ListRef([keys[j], values[j]]))
                    }))
                } else {
                    r[a] = .host(LoopItems(m.keys))
                }
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
        case .range:
            // What RangeExpr does.
            guard case .int(let lo) = r[Int(i.b)], case .int(let hi) = r[Int(i.c)] else {
                throw ScriptError("range bounds must be ints, got \(r[Int(i.b)].typeName) and \(r[Int(i.c)].typeName)")
            }
            if i.sub == 1 {
                guard hi < Int.max else { throw ScriptError("integer overflow") }
                r[Int(i.a)] = .range(lo, hi + 1, inclusive: true)
            } else {
                r[Int(i.a)] = .range(lo, hi, inclusive: false)
            }
        case .list:
            r[Int(i.a)] = .list(ListRef(Array(UnsafeBufferPointer(start: r + Int(i.b), count: Int(i.c)))))
        case .newMap:
            r[Int(i.a)] = .map(MapRef())
        case .slice:
            let b = Int(i.b)
            r[Int(i.a)] = try sliceValue(r[b], r[b + 1], r[b + 2], r[b + 3])
        case .multiIndex:
            guard let node = cur.pointee.chunk.exprs[Int(i.c)] as? MultiIndexExpr else { throw ScriptError("internal error: a subscript is missing") }
            r[Int(i.a)] = try subscriptValue(r[Int(i.b)], subscripts(node.items, from: r + Int(i.b) + 1))
        case .setMember:
            guard let node = cur.pointee.chunk.stmts[Int(i.c)] as? MemberAssignStmt else { throw ScriptError("internal error: a member assignment is missing") }
            try assignMember(r[Int(i.b)], node.name, node.op, r[Int(i.a)])
        case .assertFailed:
            throw ScriptError(i.a >= 0 ? "assertion failed: \(r[Int(i.a)].str)" : "assertion failed")
        case .setSubscript:
            guard let node = cur.pointee.chunk.stmts[Int(i.c)] as? SubscriptAssignStmt else { throw ScriptError("internal error: a subscript is missing") }
            try assignSubscript(r[Int(i.b)], subscripts(node.items, from: r + Int(i.b) + 1), node.op, r[Int(i.a)])
        case .member:
            r[Int(i.a)] = try member(r[Int(i.b)], k[Int(i.c)].str)
        case .interpolate:
            guard let node = cur.pointee.chunk.exprs[Int(i.c)] as? InterpolationExpr, Int(i.sub) < node.parts.count else {
                throw ScriptError("internal error: an interpolation's part is missing")
            }
            let piece: String
            switch node.parts[Int(i.sub)] {
            case .text(let t): piece = t
            case .value(_, let spec): piece = try spec.map { try $0.apply(r[Int(i.b)]) } ?? r[Int(i.b)].str
            }
            // The string moves out of its register, grows in place, and moves back.
            let acc = r + Int(i.a)
            var s = ""
            if case .string(let t) = acc.move() { s = t }
            s += piece
            let size = s.utf8.count
            acc.initialize(to: .string(s))
            do { try checkSize(size, "the interpolated string") } catch { throw node.locate(error) }
        case .closure:
            guard let f = cur.pointee.chunk.exprs[Int(i.b)] as? FunctionExpr else { throw ScriptError("internal error: a closure's function is missing") }
            r[Int(i.a)] = .function(Function(proto: f.proto, env: view(cur, r)))
        case .callKeywords:
            // What the tree's calls do with argument names: the call's names sort them.
            let a = Int(i.a), node = cur.pointee.chunk.exprs[Int(i.c)]
            guard let names = (node as? CallExpr)?.names ?? (node as? MethodCallExpr)?.names, names.count == Int(i.b) else {
                throw ScriptError("internal error: a call's argument names are missing")
            }
            var positional: [Value] = [], keywords: [(String, Value)] = []
            for (j, n) in names.enumerated() {
                if let n { keywords.append((n, r[a + 1 + j])) } else { positional.append(r[a + 1 + j]) }
            }
            r[a] = try call(r[a], positional, keywords, site: node)
        case .raise:
            throw ScriptError(r[Int(i.a)].str)
        case .eval:
            r[Int(i.a)] = try cur.pointee.chunk.exprs[Int(i.b)].eval(view(cur, r))
        case .tryBegin:
            stack.handlers.append((stack.callCount - 1, Int(i.a), Int(i.b), st.pointee.depth))
        case .tryEnd:
            stack.endTries(Int(i.a))
        default: break
        }
    }

    /// Calls builtin `b` with the `n` arguments in the registers from `p`: copied into the
    /// stack's spare argument array, whose buffer is used again by the next call (a builtin
    /// that keeps its arguments keeps the array, and the next call makes a new one).
    @inline(__always) private func callBuiltin(_ b: Builtin, _ p: UnsafePointer<Value>, _ n: Int, receiver: Value?, _ stack: ValueStack) throws -> Value {
        var values = stack.arguments
        stack.arguments = []
        values.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        defer {
            values.removeAll(keepingCapacity: true)
            stack.arguments = values
        }
        return try b.body(try b.bind(values, [], in: self, receiver: receiver))
    }

    /// Where the loop is: the running call's record, its code, constants and registers, and the
    /// next instruction. Kept in the loop's own variables (in machine registers); `enter` and
    /// `finish` move them.
    private struct Here {
        var cur: UnsafeMutablePointer<Call>
        var code: UnsafeMutablePointer<Instr>
        var k: UnsafeMutablePointer<Value>
        var r: UnsafeMutablePointer<Value>
        var pc: Int
    }

    /// Starts a call of compiled `fn` (`callee` its chunk's entry) from compiled code: a new
    /// window (or heap frame) with the arguments at `args`, and on at its first instruction.
    @inline(__always)
    private func enter(_ fn: Unmanaged<Function>, _ callee: UnsafePointer<Chunk.Entry>, args: UnsafeMutablePointer<Value>, result: UnsafeMutablePointer<Value>,
                       _ h: inout Here, _ stack: ValueStack, _ st: UnsafeMutablePointer<RuntimeState>) throws {
        if st.pointee.mustStop() {
            if st.pointee.budget < 0 { throw StepLimitExceeded() }
            let site = h.cur.pointee.chunk.sites[h.pc - 1]
            throw ScriptInterrupted(file: site.file, pos: site.pos)
        }
        guard st.pointee.depth < maxDepth else { throw h.cur.pointee.chunk.sites[h.pc - 1].fail("recursion depth exceeded (\(maxDepth))") }
        let (w, window, held): (UnsafeMutablePointer<Value>, Int, Unmanaged<Frame>?)
        do { (w, window, held) = try registers(fn, callee, stack) } catch {
            throw h.cur.pointee.chunk.sites[h.pc - 1].fail("recursion depth exceeded (\(maxDepth))")
        }
        for j in 0..<fn._withUnsafeGuaranteedRef({ $0.paramCount }) {
            if !Raw.holdsObject(args + j) { Raw.copy(w + j, args + j) } else { put(w + j, args[j]) }  // (w's registers are nil)
        }
        st.pointee.depth += 1
        h.cur.pointee.pc = h.pc
        stack.calls[stack.callCount] = Call(fnRef: fn, entry: callee, regs: w, window: window, top: stack.top, callerPC: h.pc,
                                            result: result, frame: held)
        stack.callCount += 1
        h = Here(cur: stack.calls + (stack.callCount - 1), code: callee.pointee.code, k: callee.pointee.constants, r: w, pc: 0)
    }

    /// Ends the current call with `value`: on in the caller, or out of the VM (the value).
    /// nil: the result is in place already.
    @inline(__always)
    private func finish(_ value: Value?, _ h: inout Here, _ stack: ValueStack, _ entryCall: Int, _ st: UnsafeMutablePointer<RuntimeState>) -> Value? {
        let done = h.cur  // read in place: the record is not copied
        if stack.innermostTry == stack.callCount - 1 { stack.endTries(Int.max) }  // a return from inside a `try`
        done.pointee.end(stack)
        stack.callCount -= 1
        if stack.callCount == entryCall { return value ?? .nil_ }
        st.pointee.depth -= 1
        if let value { done.pointee.result.pointee = value }
        let cur = stack.calls + (stack.callCount - 1)
        stack.top = cur.pointee.top
        h = Here(cur: cur, code: cur.pointee.entry.pointee.code, k: cur.pointee.entry.pointee.constants, r: cur.pointee.regs, pc: cur.pointee.pc)
        return nil
    }

    /// The builtin method `member(o, name)` would bind to `o` (for a map with no key `name`), or
    /// nil when it would give anything else (a host's property, an error).
    @inline(__always) private func declaredMethod(_ o: Value, _ name: String) -> Builtin? {
        switch o {
        case .list: return listMethods[name]
        case .string: return stringMethods[name]
        case .map: return mapMethods[name]  // (`callMethod` looked `name` up as a key first)
        case .host(let h): return h.hostType.methods[name]
        default: return nil
        }
    }

    /// The frame the tree nodes of a compiled call see: its heap frame, or a view of its window.
    @inline(__always) private func view(_ c: UnsafeMutablePointer<Call>, _ r: UnsafeMutablePointer<Value>) -> Frame {
        if let v = c.pointee.frame { return v.takeUnretainedValue() }
        let v = Frame.view(of: r, parent: c.pointee.fn.env)
        c.pointee.frame = Unmanaged.passRetained(v)
        return v
    }

    /// The slots of the frame `depth` levels out of a compiled call (the tree's `ancestor`).
    @inline(__always) private func upvalueSlots(_ fn: Function, _ r: UnsafeMutablePointer<Value>, _ depth: Int) -> UnsafeMutablePointer<Value> {
        guard depth > 0, let env = fn.env else { return r }
        return env.ancestor(depth - 1).slots
    }
}
