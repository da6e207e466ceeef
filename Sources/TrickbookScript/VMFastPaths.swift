// What the VM's instructions do without Swift's copies of a `Value`: a callee, a map's item, a
// list read where they are, without a reference count (a register keeps them), and numbers
// read and written as bytes (RawValue.swift), Swift's path taken whenever an object is involved.

/// The compiled function `p` holds with `argc` parameters, and its chunk's entry, read without
/// a reference count (the register keeps the function; its proto, the chunk); nil for anything
/// else, and for a function not compiled yet (its first call compiles it).
@inline(__always) func compiledCallee(_ p: UnsafePointer<Value>, _ argc: Int) -> (Unmanaged<Function>, UnsafePointer<Chunk.Entry>)? {
    guard let f = functionAt(p) else { return nil }
    let e: UnsafePointer<Chunk.Entry>? = f._withUnsafeGuaranteedRef { f in f.paramCount == argc ? f.unownedProto.entry : nil }
    return e.map { (f, $0) }
}

/// The value of key `key` in the map `p` holds, copied into `dst` (not `p`: the map may have
/// its last count there), without a count on the map: false when `p` holds no map, or the map
/// no such key. The item is copied once, from the map into the register.
@inline(__always) func copyMapItem(_ p: UnsafePointer<Value>, _ key: UnsafePointer<ChunkKey>, into dst: UnsafeMutablePointer<Value>) -> Bool {
    // (the key's form read where it is, through a pointer: a copy of it took a count on its
    // string at every lookup)
    guard key.pointee.ok, let m = mapAt(p), let form = key.pointer(to: \.form) else { return false }
    return m._withUnsafeGuaranteedRef { $0.copyItem(form, key.pointee.hash, into: dst) }
}

@inline(__always) func mapAt(_ p: UnsafePointer<Value>) -> Unmanaged<MapRef>? { Raw.object(p, tag: Raw.mapTag, as: MapRef.self) }

/// `p.pointee = v`, without the call that lets go of the old value when it is a number, a bool
/// or nil (most stores into registers).
@inline(__always) func put(_ p: UnsafeMutablePointer<Value>, _ v: consuming Value) {
    // (`consume`: the value moves in; a copy took a count that the caller then dropped)
    if Raw.holdsObject(p) { p.pointee = consume v } else { p.initialize(to: consume v) }
}

/// `dst.pointee = src.pointee`: as bytes when neither holds an object.
@inline(__always) func move(_ dst: UnsafeMutablePointer<Value>, _ src: UnsafePointer<Value>) {
    if !Raw.holdsObject(dst), !Raw.holdsObject(src) { Raw.copy(dst, src) } else { Raw.assign(dst, src) }
}

/// `a (op) b` into `dst` (which holds no object) when both are ints or both floats and the
/// result is what `binary` gives (an int sum that overflows, a division of ints, and every
/// other case take `binary`); false when it is not done.
/// `rawBinary` as a call (where inlining it measured slower: fib's `binary`).
@inline(never) func rawBinaryCall(_ op: UInt8, _ a: UnsafePointer<Value>, _ b: UnsafePointer<Value>, into dst: UnsafeMutablePointer<Value>) -> Bool {
    rawBinary(op, a, b, into: dst)
}

/// Inlined wherever it is used (`@inline(__always)` was not honoured in the VM's loop, whose
/// in-place updates then paid a call).
@_transparent func rawBinary(_ op: UInt8, _ a: UnsafePointer<Value>, _ b: UnsafePointer<Value>, into dst: UnsafeMutablePointer<Value>) -> Bool {
    let ta = Raw.tag(a), tb = Raw.tag(b)
    if ta == Raw.intTag, tb == Raw.intTag {
        let x = Raw.int(a), y = Raw.int(b)
        switch op {
        case 0: let (s, o) = x.addingReportingOverflow(y); if o { return false }; Raw.setInt(dst, s)
        case 1: let (s, o) = x.subtractingReportingOverflow(y); if o { return false }; Raw.setInt(dst, s)
        case 2: let (s, o) = x.multipliedReportingOverflow(by: y); if o { return false }; Raw.setInt(dst, s)
        default:
            guard let holds = BinOp.compare(op, x, y) else { return false }
            Raw.setBool(dst, holds)
        }
        return true
    }
    if ta == Raw.floatTag, tb == Raw.floatTag {
        let x = Raw.float(a), y = Raw.float(b)
        switch op {
        case 0: Raw.setFloat(dst, x + y)
        case 1: Raw.setFloat(dst, x - y)
        case 2: Raw.setFloat(dst, x * y)
        case 3: Raw.setFloat(dst, x / y)
        default:
            guard let holds = BinOp.compare(op, x, y) else { return false }
            Raw.setBool(dst, holds)
        }
        return true
    }
    return false
}

/// `dst (sub)= n` for an int constant n (`updateI`: sub 0 adds, 1 subtracts): an int without
/// overflow in place, anything else as `update` does it.
@inline(__always) func updateByInt(_ dst: UnsafeMutablePointer<Value>, _ sub: UInt8, _ n: Int) throws {
    if Raw.tag(dst) == Raw.intTag, let s = plusInt(sub, Raw.int(dst), n) {
        Raw.setInt(dst, s)
        return
    }
    try updateInPlace(dst, BinOp.at(sub), .int(n))
}

/// x + n (sub 0) or x − n (sub 1), as `binaryI` and `updateI` take them; nil when it overflows.
@inline(__always) func plusInt(_ sub: UInt8, _ x: Int, _ n: Int) -> Int? {
    let (s, o) = sub == 0 ? x.addingReportingOverflow(n) : x.subtractingReportingOverflow(n)
    return o ? nil : s
}

/// Comparison `op` of two ints or two floats (nil: anything else).
@inline(__always) func rawCompare(_ op: UInt8, _ a: UnsafePointer<Value>, _ b: UnsafePointer<Value>) -> Bool? {
    let ta = Raw.tag(a), tb = Raw.tag(b)
    if ta == Raw.intTag, tb == Raw.intTag { return BinOp.compare(op, Raw.int(a), Raw.int(b)) }
    if ta == Raw.floatTag, tb == Raw.floatTag { return BinOp.compare(op, Raw.float(a), Raw.float(b)) }
    return nil
}

/// A list's append as the core library does it (CoreLibrary.swift: the size checked, the
/// collector told), the item moved in from its register (a temporary): no count taken, none
/// dropped.
@inline(__always) func append(moving p: UnsafeMutablePointer<Value>, to list: Unmanaged<ListRef>) throws {
    try list._withUnsafeGuaranteedRef { l in
        try checkSize(l.items.count + 1, "the list")
        l.items.append(p.move())
        p.initialize(to: .nil_)
        l.stored(l.items[l.items.count - 1])
    }
}

@inline(__always) func listAt(_ p: UnsafePointer<Value>) -> Unmanaged<ListRef>? { Raw.object(p, tag: Raw.listTag, as: ListRef.self) }

@inline(__always) func builtinAt(_ p: UnsafePointer<Value>) -> Unmanaged<Builtin>? { Raw.object(p, tag: Raw.builtinTag, as: Builtin.self) }

@inline(__always) func functionAt(_ p: UnsafePointer<Value>) -> Unmanaged<Function>? { Raw.object(p, tag: Raw.functionTag, as: Function.self) }
