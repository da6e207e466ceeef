// Compiles a function's body, as the tree compiler left it (names already resolved to slots), to
// bytecode. Statements and expressions the VM runs itself are translated; any other node stays
// a tree node, run by `exec`/`eval` on the same slots, so every construct works from the start
// and the error messages and places stay the tree's.
//
// A function's registers are a window of the VM's stack that the next call reuses, unless it
// makes functions (a closure keeps its defining frame alive): then they are a heap frame's slots,
// as are those of a cell's top level.

struct BytecodeCompiler {
    /// Registers a function may use (its slots and temporaries).
    static let maxRegisters = 250

    private let chunk: Chunk
    private var top: Int
    /// Where `break` and `continue` go in the loops around: the jumps to patch, and the start.
    private var loops: [(breaks: [Int], continues: [Int], start: Int, tries: Int)] = []
    /// The `try`s the code being compiled is inside (a jump out of a loop leaves those opened
    /// since the loop began).
    private var tries = 0
    /// Compiling a cell's top level: its expression statements set the session's last value.
    private var topLevel = false
    /// The expression statement of a cell's top level being compiled, whose value is echoed (one
    /// nested in a loop or an `if` is kept as the last value, not echoed).
    private var shown: ObjectIdentifier?
    /// Globals the body's statements so far gave values (see `isSettled`).
    private var assigned: Set<Int> = []

    /// The bytecode of `proto`'s body, or nil when it should stay a tree.
    static func compile(_ proto: FunctionProto) -> Chunk? {
        // Defaults are evaluated by the call's binding, in a frame whose slots the call's
        // registers then take: unless a default makes a function that would keep that frame.
        guard !proto.defaultsMakeFunctions, proto.slotCount < maxRegisters, let last = proto.body.last else { return nil }
        let chunk = Chunk(slots: proto.slotCount, params: proto.params.count, onHeap: proto.makesClosures)
        return compile(Array(proto.body), into: chunk, end: last, topLevel: false)
    }

    /// The bytecode of a cell's top level (`slots` of its own), or nil.
    static func compileTopLevel(_ body: [Stmt], slots: Int) -> Chunk? {
        guard slots < maxRegisters, let last = body.last else { return nil }
        return compile(body, into: Chunk(slots: slots, params: 0, onHeap: true), end: last, topLevel: true)
    }

    private static func compile(_ body: [Stmt], into chunk: Chunk, end: Node, topLevel: Bool) -> Chunk? {
        var c = BytecodeCompiler(chunk: chunk, top: chunk.slots)
        c.topLevel = topLevel
        for s in body {
            if topLevel, s is ExprStmt { c.shown = ObjectIdentifier(s) }
            c.statement(s)
            // A global this body gives a value before anything nested is defined from then on
            // (had the statement failed, nothing after it would run).
            if let a = s as? AssignStmt, case .global(let g) = a.target { c.assigned.insert(g) }
        }
        c.emit(Instr(.retNil), end)
        guard chunk.registers <= maxRegisters else { return nil }
        chunk.finish()
        return chunk
    }

    private init(chunk: Chunk, top: Int) {
        self.chunk = chunk
        self.top = top
    }

    /// Whether evaluating `e` can neither fail nor change anything: a constant, a local, or a
    /// global that is defined by then (defined now, or given a value by an earlier statement of
    /// the body; a global cannot become undefined).
    private func isSettled(_ e: Expr) -> Bool {
        switch e {
        case is ConstExpr, is LocalGet, is UpvalueGet: return true
        case let g as GlobalGet: return g.state.pointee.defined[g.index] || assigned.contains(g.index)
        default: return false
        }
    }

    /// Whether evaluating `e` runs no script code (no call): a global read before or after it
    /// is the same read. What `callGlobal` needs of a call's arguments.
    private static func runsNoScript(_ e: Expr) -> Bool {
        var pending = [e]
        while let e = pending.popLast() {
            switch e {
            case is ConstExpr, is LocalGet, is UpvalueGet, is GlobalGet: break
            case let b as BinaryExpr: pending += [b.lhs, b.rhs]
            case let n as NegExpr: pending.append(n.operand)
            case let n as NotExpr: pending.append(n.operand)
            default: return false
            }
        }
        return true
    }

    // MARK: Registers and code

    private mutating func temp() -> Int {
        let r = top
        top += 1
        chunk.registers = max(chunk.registers, top)
        return r
    }

    private mutating func free(to mark: Int) { top = mark }

    @discardableResult
    private func emit(_ i: Instr, _ site: Node) -> Int {
        chunk.code.append(i)
        chunk.sites.append(site)
        return chunk.code.count - 1
    }

    private var here: Int { chunk.code.count }

    /// Points the jump at `at` (its target operand) to `target`.
    private func patch(_ at: Int, to target: Int) {
        switch chunk.code[at].op {
        case .jump: chunk.code[at].a = Int32(target)
        case .jumpIfFalse, .jumpIfTrue: chunk.code[at].b = Int32(target)
        default: chunk.code[at].c = Int32(target)
        }
    }

    private func constant(_ v: Value) -> Int {
        chunk.constants.append(v)
        return chunk.constants.count - 1
    }

    // MARK: Statements

    private mutating func statement(_ s: Stmt) {
        let mark = top
        defer { free(to: mark) }
        switch s {
        case let e as ExprStmt:
            let v = expression(e.expr)
            if topLevel { emit(Instr(.keep, v, sub: shown == ObjectIdentifier(e) ? 1 : 0), e) }
        case let a as AssignStmt:
            let v = expression(a.value)
            store(a.target, from: v, mustExist: !a.declares, site: a)
        case let u as CompoundAssignStmt:
            if let n = BytecodeCompiler.immediate(u) {
                if case .local(let slot) = u.target { emit(Instr(.updateI, slot, n, sub: u.op.index), u); break }
                if case .global(let g) = u.target { emit(Instr(.updateGlobalI, g, n, sub: u.op.index), u); break }
            }
            let v = value(u.value)
            switch u.target {
            case .local(let slot): emit(Instr(.update, slot, v, sub: u.op.index), u)
            case .global(let g): emit(Instr(.updateGlobal, g, v, sub: u.op.index), u)
            case .upvalue:
                let cur = temp()
                load(u.target, into: cur, site: u)
                emit(Instr(.update, cur, v, sub: u.op.index), u)
                store(u.target, from: cur, mustExist: false, site: u)
            }
        case let x as IndexAssignStmt:
            let o = expression(x.object), k = expression(x.index), v = expression(x.value)
            emit(Instr(.setIndex, o, k, v, sub: x.op.map { $0.index + 1 } ?? 0), x)
        case let b as BlockStmt:
            for t in b.body { statement(t) }
        case let i as IfStmt:
            let skip = jumpUnless(i.cond)
            statement(i.then)
            if let other = i.otherwise {
                let end = emit(Instr(.jump), i)
                patch(skip, to: here)
                statement(other)
                patch(end, to: here)
            } else {
                patch(skip, to: here)
            }
        case let w as WhileStmt:
            if let cmp = w.cond as? BinaryExpr, BytecodeCompiler.comparisons.contains(cmp.op) {
                // Tested at the top once, then at the bottom: each round is the body and one
                // `loopIf` (the test, the interrupt and the step limit, the jump back).
                let exit = jumpUnless(w.cond)
                emit(Instr(.check), w)
                let body = here
                loop(start: -1) { $0.statement(w.body) }
                let test = here
                let mark = top
                let at: Int
                if let n = BytecodeCompiler.immediate(cmp) {
                    at = emit(Instr(.loopIfI, operand(cmp.lhs), n, body, sub: cmp.op.index), cmp)
                } else {
                    let a = value(cmp.lhs), b = value(cmp.rhs)
                    at = emit(Instr(.loopIf, a, b, body, sub: cmp.op.index), cmp)
                }
                free(to: mark)
                chunk.stopSites[at] = w
                patch(exit, to: here)
                patchLoopExits(continueAt: test)
            } else {
                let start = here
                let exit = jumpUnless(w.cond)
                emit(Instr(.check), w)
                loop(start: start) { $0.statement(w.body) }
                emit(Instr(.jump, start), w)
                patch(exit, to: here)
                patchLoopExits()
            }
        case let f as ForStmt:
            let state = temp()
            _ = temp(); _ = temp()  // the loop's position and its end (or its items)
            let item = temp()
            _ = expression(f.iterable, into: state)
            // Two names: a map gives [key, value] pairs, and each item is unpacked.
            let prep = emit(Instr(.forPrep, state, 0, 0, sub: f.second == nil ? 0 : 1), f)
            let start = here
            let next = emit(Instr(.forNext, state, item, 0), f)
            if let second = f.second {
                let a = temp(), b = temp()
                emit(Instr(.unpack, item, a, b), f)
                store(f.first, from: a, mustExist: false, site: f)
                store(second, from: b, mustExist: false, site: f)
            } else {
                store(f.first, from: item, mustExist: false, site: f)
            }
            loop(start: start) { $0.statement(f.body) }
            emit(Instr(.jump, start), f)
            patch(prep, to: here)
            patch(next, to: here)
            patchLoopExits()
            emit(Instr(.loadK, state, constant(.nil_)), f)  // the items are let go as the loop ends
        case let t as TryStmt where tries < 200:
            // The handler finds the error in `error`; the VM goes there when a script error
            // comes out of the body (or a call it makes), as the tree's TryStmt catches it.
            let error = temp()
            let begin = emit(Instr(.tryBegin, 0, error), t)
            tries += 1
            statement(t.body)
            tries -= 1
            emit(Instr(.tryEnd, 1), t)
            let skip = emit(Instr(.jump), t)
            chunk.code[begin].a = Int32(here)
            if let target = t.errorTarget { store(target, from: error, mustExist: false, site: t) }
            statement(t.handler)
            patch(skip, to: here)
        case let x as MemberAssignStmt:
            let o = expression(x.object), v = expression(x.value)
            chunk.stmts.append(x)
            emit(Instr(.setMember, v, o, chunk.stmts.count - 1), x)
        case let a as AssertStmt:
            // As an `if`: the condition's truth as the tree takes it; the message only on failure.
            let failed = jumpUnless(a.cond)
            let end = emit(Instr(.jump), a)
            patch(failed, to: here)
            emit(Instr(.assertFailed, a.message.map { expression($0) } ?? -1), a)
            patch(end, to: here)
        case let x as SubscriptAssignStmt:
            let base = temp()
            expression(x.object, into: base)
            subscriptItems(x.items, site: x)
            let v = expression(x.value, into: temp())
            chunk.stmts.append(x)
            emit(Instr(.setSubscript, v, base, chunk.stmts.count - 1), x)
        case let t as ThrowStmt:
            emit(Instr(.raise, expression(t.value)), t)
        case let r as ReturnStmt:
            if let v = r.value { emit(Instr(.ret, value(v)), r) } else { emit(Instr(.retNil), r) }
        case is BreakStmt:
            leaveTries(s)
            loops[loops.count - 1].breaks.append(emit(Instr(.jump), s))
        case is ContinueStmt:
            leaveTries(s)
            let start = loops[loops.count - 1].start
            let at = emit(Instr(.jump, start), s)
            if start < 0 { loops[loops.count - 1].continues.append(at) }
        default:
            // Run by the tree: a `break` or `continue` that comes out of it goes where ours would.
            chunk.stmts.append(s)
            let at = emit(Instr(.exec, chunk.stmts.count - 1, -1, -1, sub: UInt8(truncatingIfNeeded: tries - (loops.last?.tries ?? tries))), s)
            if !loops.isEmpty {
                loops[loops.count - 1].breaks.append(at)
                chunk.code[at].c = Int32(loops[loops.count - 1].start)
                if loops[loops.count - 1].start < 0 { loops[loops.count - 1].continues.append(at) }
            }
        }
    }

    /// A jump, to be patched, taken when `cond` is false: one instruction for a comparison.
    private mutating func jumpUnless(_ cond: Expr) -> Int {
        let mark = top
        defer { free(to: mark) }
        if let cmp = cond as? BinaryExpr, BytecodeCompiler.comparisons.contains(cmp.op) {
            if let n = BytecodeCompiler.immediate(cmp) {
                return emit(Instr(.jumpUnlessI, operand(cmp.lhs), n, 0, sub: cmp.op.index), cmp)
            }
            let a = value(cmp.lhs), b = value(cmp.rhs)
            return emit(Instr(.jumpUnless, a, b, 0, sub: cmp.op.index), cmp)
        }
        return emit(Instr(.jumpIfFalse, expression(cond), 0), cond)
    }

    /// Before a `break` or `continue`: ends the `try`s it jumps out of.
    private func leaveTries(_ s: Stmt) {
        let n = tries - loops[loops.count - 1].tries
        if n > 0 { emit(Instr(.tryEnd, n), s) }
    }

    private mutating func loop(start: Int, _ body: (inout BytecodeCompiler) -> Void) {
        loops.append(([], [], start, tries))
        body(&self)
    }

    /// Points the loop's `break`s (and the break targets of its tree statements) past its end,
    /// and its `continue`s, when its start was not known as they were compiled, at `continueAt`.
    private mutating func patchLoopExits(continueAt: Int? = nil) {
        let l = loops.removeLast()
        for at in l.breaks {
            if chunk.code[at].op == .exec { chunk.code[at].b = Int32(here) } else { patch(at, to: here) }
        }
        guard let continueAt else { return }
        for at in l.continues {
            if chunk.code[at].op == .exec { chunk.code[at].c = Int32(continueAt) } else { chunk.code[at].a = Int32(continueAt) }
        }
    }

    static let comparisons: [BinOp] = [.lt, .le, .gt, .ge, .eq, .ne]

    /// `e` when it is an int constant small enough to be written in an instruction.
    static func smallInt(_ e: Expr) -> Int? {
        guard let k = e as? ConstExpr, case .int(let n) = k.value, let small = Int32(exactly: n) else { return nil }
        return Int(small)
    }

    /// The int constant `u` adds or subtracts, when it fits an instruction (`updateI`).
    static func immediate(_ u: CompoundAssignStmt) -> Int? { u.op == .add || u.op == .sub ? smallInt(u.value) : nil }

    /// The int constant on the right of `b`, when it fits an instruction (and the left is not a
    /// constant too): `binaryI` and `jumpUnlessI` carry it.
    static func immediate(_ b: BinaryExpr) -> Int? { b.lhs is ConstExpr ? nil : smallInt(b.rhs) }

    private mutating func store(_ t: Target, from r: Int, mustExist: Bool, site: Node) {
        switch t {
        case .local(let slot): if slot != r { emit(Instr(.move, slot, r), site) }
        case .upvalue(let depth, let slot): emit(Instr(.setUpvalue, r, depth, slot), site)
        case .global(let i): emit(Instr(.setGlobal, r, i, mustExist ? 1 : 0), site)
        }
    }

    private mutating func load(_ t: Target, into r: Int, site: Node) {
        switch t {
        case .local(let slot): emit(Instr(.move, r, slot), site)
        case .upvalue(let depth, let slot): emit(Instr(.getUpvalue, r, depth, slot), site)
        case .global(let i): emit(Instr(.getGlobal, r, i), site)
        }
    }

    // MARK: Expressions

    /// `e` into `r`, or nil when it is omitted (`site`: the node it belongs to).
    private mutating func optional(_ e: Expr?, into r: Int, site: Node) {
        if let e { expression(e, into: r) } else { emit(Instr(.loadK, r, constant(.nil_)), site) }
    }

    /// A subscript's items into the next registers, in order (see `subscripts(_:from:)`).
    private mutating func subscriptItems(_ items: [SubscriptItem], site: Node) {
        for item in items {
            switch item {
            case .index(let e): expression(e, into: temp())
            case .slice(let a, let b, let c): for part in [a, b, c] { optional(part, into: temp(), site: site) }
            case .ellipsis: break
            }
        }
    }

    /// An operand of the instructions that take constants too (`binary`, `update`, `index`,
    /// `jumpUnless`, `ret`): a constant is -1 - its index; else as `operand`.
    private mutating func value(_ e: Expr) -> Int {
        if let k = e as? ConstExpr { return -1 - constant(k.value) }
        return operand(e)
    }

    /// A register holding the expression's value: a local's own slot, else a new temporary.
    private mutating func operand(_ e: Expr) -> Int {
        if let l = e as? LocalGet { return l.slot }
        return expression(e)
    }

    /// The expression's value in a register (a new temporary unless `into` says which).
    @discardableResult
    private mutating func expression(_ e: Expr, into given: Int? = nil) -> Int {
        if given == nil, let l = e as? LocalGet { return l.slot }
        let dst = given ?? temp()
        let mark = top
        defer { free(to: mark) }
        switch e {
        case let k as ConstExpr:
            emit(Instr(.loadK, dst, constant(k.value)), k)
        case let l as LocalGet:
            emit(Instr(.move, dst, l.slot), l)
        case let u as UpvalueGet:
            emit(Instr(.getUpvalue, dst, u.depth, u.slot), u)
        case let g as GlobalGet:
            emit(Instr(.getGlobal, dst, g.index), g)
        case let b as BinaryExpr:
            if b.op == .add || b.op == .sub, let n = BytecodeCompiler.immediate(b) {
                emit(Instr(.binaryI, dst, operand(b.lhs), n, sub: b.op.index), b)
            } else {
                let x = value(b.lhs), y = value(b.rhs)
                emit(Instr(.binary, dst, x, y, sub: b.op.index), b)
            }
        case let n as NegExpr:
            emit(Instr(.neg, dst, operand(n.operand)), n)
        case let n as NotExpr:
            emit(Instr(.not, dst, operand(n.operand)), n.operand)
        case let a as AndExpr:
            expression(a.lhs, into: dst)
            let end = emit(Instr(.jumpIfFalse, dst, 0), a)
            expression(a.rhs, into: dst)
            patch(end, to: here)
        case let o as OrExpr:
            expression(o.lhs, into: dst)
            let end = emit(Instr(.jumpIfTrue, dst, 0), o)
            expression(o.rhs, into: dst)
            patch(end, to: here)
        case let t as TernaryExpr:
            let c = operand(t.cond)
            let other = emit(Instr(.jumpIfFalse, c, 0), t.cond)
            expression(t.a, into: dst)
            let end = emit(Instr(.jump), t)
            patch(other, to: here)
            expression(t.b, into: dst)
            patch(end, to: here)
        case let x as IndexExpr:
            if let g = x.object as? GlobalGet, isSettled(g), isSettled(x.index) {
                emit(Instr(.indexGlobal, dst, g.index, value(x.index)), x)  // (the global read where it is)
            } else {
                let o = value(x.object), k = value(x.index)
                emit(Instr(.index, dst, o, k), x)
            }
        case let x as RangeExpr:
            let lo = operand(x.lo), hi = operand(x.hi)
            emit(Instr(.range, dst, lo, hi, sub: x.inclusive ? 1 : 0), x)
        case let x as ListExpr:
            let first = top
            for item in x.items { expression(item, into: temp()) }
            emit(Instr(.list, dst, first, x.items.count), x)
        case let x as InterpolationExpr where x.parts.count < 250:
            // Part by part into `dst`, as the tree builds it: a part's value is formatted (an
            // error there is the value's) and the size checked after each part.
            chunk.exprs.append(x)
            let node = chunk.exprs.count - 1
            emit(Instr(.loadK, dst, constant(.string(""))), x)
            for (k, p) in x.parts.enumerated() {
                let mark = top
                switch p {
                case .text: emit(Instr(.interpolate, dst, -1, node, sub: UInt8(k)), x)
                case .value(let e, _): emit(Instr(.interpolate, dst, operand(e), node, sub: UInt8(k)), e)
                }
                free(to: mark)
            }
        case let x as SliceExpr:
            let base = temp()
            expression(x.object, into: base)
            for part in [x.start, x.end, x.step] { optional(part, into: temp(), site: x) }
            emit(Instr(.slice, dst, base), x)
        case let x as MultiIndexExpr:
            let base = temp()
            expression(x.object, into: base)
            subscriptItems(x.items, site: x)
            chunk.exprs.append(x)
            emit(Instr(.multiIndex, dst, base, chunk.exprs.count - 1), x)
        case let x as MapExpr:
            // Key, value, then the item set, pair by pair, as the tree builds it (an error in
            // setting an item is its key's).
            emit(Instr(.newMap, dst), x)
            for (k, v) in zip(x.keys, x.values) {
                let mark = top
                let key = expression(k), value = expression(v)
                emit(Instr(.setIndex, dst, key, value), k)
                free(to: mark)
            }
        case let f as FunctionExpr:
            chunk.exprs.append(f)
            emit(Instr(.closure, dst, chunk.exprs.count - 1), f)
        case let x as MemberExpr:
            emit(Instr(.member, dst, operand(x.object), constant(.string(x.name))), x)
        case let call as CallExpr where !call.hasKeywords:
            let base = dst >= chunk.slots && dst == mark - 1 ? dst : temp()  // the result where it is wanted
            if let g = call.callee as? GlobalGet, g.state.pointee.defined[g.index], call.args.allSatisfy(Self.runsNoScript) {
                for a in call.args { expression(a, into: temp()) }
                emit(Instr(.callGlobal, base, call.args.count, g.index), call)
            } else {
                expression(call.callee, into: base)
                for a in call.args { expression(a, into: temp()) }
                emit(Instr(.call, base, call.args.count), call)
            }
            if base != dst { emit(Instr(.move, dst, base), call) }
        case let m as MethodCallExpr where !m.names.contains(where: { $0 != nil }):
            let base = dst >= chunk.slots && dst == mark - 1 ? dst : temp()
            if m.args.allSatisfy(isSettled) {
                // Finding the method after the arguments is no change: they can neither fail
                // nor change anything.
                let append = m.name == "append" && m.args.count == 1  // a list's append, without a call
                let on: (Int, Int)? = switch m.object {
                case let g as GlobalGet where isSettled(g): (g.index, 0)
                case let l as LocalGet where l.slot != base: (l.slot, 1)
                default: nil
                }
                if let (at, isRegister) = on {
                    for a in m.args { expression(a, into: temp()) }
                    emit(Instr(.callMethodOn, base, m.args.count, constant(.string(m.name)), sub: append ? 1 : 0), m)
                    emit(Instr(.operand, at, isRegister), m)
                } else {
                    expression(m.object, into: base)
                    for a in m.args { expression(a, into: temp()) }
                    emit(Instr(append ? .append : .callMethod, base, m.args.count, constant(.string(m.name))), m)
                }
            } else {
                // Found first, as the tree finds it: an error in finding it comes before the
                // arguments' effects, and they cannot change what is called.
                _ = temp()  // base + 1: what is called
                expression(m.object, into: base)
                let append: UInt8 = m.name == "append" && m.args.count == 1 ? 1 : 0  // a list's, done in place
                emit(Instr(.method, base, 0, constant(.string(m.name)), sub: append), m)
                for a in m.args { expression(a, into: temp()) }
                emit(Instr(.callResolved, base, m.args.count, sub: append), m)
            }
            if base != dst { emit(Instr(.move, dst, base), m) }
        case let call as CallExpr:  // with argument names (those without come before)
            let base = dst >= chunk.slots && dst == mark - 1 ? dst : temp()
            expression(call.callee, into: base)
            for a in call.args { expression(a, into: temp()) }
            chunk.exprs.append(call)
            emit(Instr(.callKeywords, base, call.args.count, chunk.exprs.count - 1), call)
            if base != dst { emit(Instr(.move, dst, base), call) }
        case let m as MethodCallExpr:  // with argument names: the member found first, as the tree does
            let base = dst >= chunk.slots && dst == mark - 1 ? dst : temp()
            expression(m.object, into: base)
            emit(Instr(.member, base, base, constant(.string(m.name))), m)
            for a in m.args { expression(a, into: temp()) }
            chunk.exprs.append(m)
            emit(Instr(.callKeywords, base, m.args.count, chunk.exprs.count - 1), m)
            if base != dst { emit(Instr(.move, dst, base), m) }
        default:
            chunk.exprs.append(e)
            emit(Instr(.eval, dst, chunk.exprs.count - 1), e)
        }
        return dst
    }
}
