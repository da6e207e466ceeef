// A map's index: which position of its insertion-ordered keys holds a key. Open addressing with
// linear probing over a power-of-two table, each key's hash kept beside its position, in the
// spirit of CPython's compact dict. Swift's Dictionary over an enum key hashed every key with
// SipHash through the enum's generic conformance: a map of 1M int keys took 12 times Lua's time.

/// A key in the form keys compare in: nil, a bool, an int, a float that is not a whole number
/// (a whole float is the int: 1 and 1.0 are one key), or a string.
struct MapKeyForm {
    /// 0 nil, 1 bool, 2 int, 3 float, 4 string
    let kind: UInt8
    /// The key's bits; for a string, the two words of the String itself (`bits`, `bits2`): a
    /// key held as the same bits is the same string, found without copying it out of its value.
    let bits: UInt64
    var bits2: UInt64 = 0
    let string: String?

    /// A stand-in where a constant is no key (see `ChunkKey`): never looked up.
    static let none = MapKeyForm(kind: 0, bits: 0, string: nil)
    private init(kind: UInt8, bits: UInt64, string: String?) { self.kind = kind; self.bits = bits; self.string = string }

    @inline(__always) init(_ v: Value) throws {
        switch v {
        case .int(let i): kind = 2; bits = UInt64(bitPattern: Int64(i)); string = nil
        case .string(let s):
            kind = 4; string = s
            (bits, bits2) = Raw.words(of: s)
        case .float(let d):
            if d == d.rounded(), abs(d) < 9e15 {
                kind = 2; bits = UInt64(bitPattern: Int64(d))  // whole and in range: exact
            } else {
                kind = 3; bits = d.bitPattern
            }
            string = nil
        case .bool(let b): kind = 1; bits = b ? 1 : 0; string = nil
        case .nil_: kind = 0; bits = 0; string = nil
        default: throw ScriptError("\(v.typeName) cannot be a map key")
        }
    }

    /// Whether the key at `p` is the key `form`, read in place. A float key equals only the same
    /// float (NaN never finds itself, as with Double's ==). `form` is read through a pointer: its
    /// string is copied (a count) only when the bits of the two strings differ.
    @inline(__always) static func matches(_ form: UnsafePointer<MapKeyForm>, _ p: UnsafePointer<Value>) -> Bool {
        let kind = form.pointee.kind, bits = form.pointee.bits
        switch kind {
        case 2:
            if case .int(let i) = p.pointee { return bits == UInt64(bitPattern: Int64(i)) }
        case 4:
            if Raw.ok, Raw.tag(p) == Raw.stringTag, Raw.stringWords(p) == (bits, form.pointee.bits2) { return true }
            if case .string(let s) = p.pointee, let k = form.pointee.string { return s == k }
            return false
        default: break
        }
        guard let o = try? MapKeyForm(p.pointee), o.kind == kind else { return false }
        return kind == 3 ? Double(bitPattern: bits) == Double(bitPattern: o.bits) : bits == o.bits
    }

    /// The hash. An int is its own hash, as in CPython: keys that are near each other land in
    /// slots that are near each other, so that a loop over 0, 7, 14, ... walks memory in order
    /// (the probe sequence, not the hash, breaks up regular patterns). Floats are mixed from
    /// their bits; strings use Swift's hash, which agrees with its == (canonically equal strings
    /// hash alike).
    @inline(__always) var hash: UInt64 {
        switch kind {
        case 2: return bits
        case 4: return UInt64(bitPattern: Int64(string?.hashValue ?? 0))
        case 3: return mixHash(bits)
        default: return mixHash(bits &+ UInt64(kind) &* 0x1_0000_0001)
        }
    }
}

/// Spreads a hash's bits over the whole word (the finalizer of MurmurHash3), so that the low bits
/// the table uses depend on every bit: keys 0, 7, 14, ... do not crowd together.
@inline(__always) func mixHash(_ x: UInt64) -> UInt64 {
    var h = x
    h ^= h >> 33
    h = h &* 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    h = h &* 0xc4ce_b9fe_1a85_ec53
    h ^= h >> 33
    return h
}

/// The positions of a map's keys by hash. A slot holds the top 32 bits of the key's hash and its
/// position + 1 (0: empty), so that a probe reads one word before it reads a key; the table is
/// at most half full. A probe goes on from slot i to 5i + 1 + the hash's bits not used yet
/// (CPython's sequence): every slot is reached, and keys whose low bits agree part soon. The
/// table is plain memory of its own, so that a lookup touches no reference count.
final class MapIndex {
    private var slots: UnsafeMutablePointer<UInt64>?
    private var mask = 0
    /// Each position's hash, to grow without hashing the keys again.
    private var hashes: [UInt64] = []

    deinit { slots?.deallocate() }

    /// The position of the key `form` (hash `hash`) among `keys`, or nil.
    @inline(__always) func find(_ form: UnsafePointer<MapKeyForm>, _ hash: UInt64, _ keys: UnsafeBufferPointer<Value>) -> Int? {
        guard let slots else { return nil }
        let tag = hash >> 32
        var i = Int(truncatingIfNeeded: hash) & mask, perturb = hash
        while true {
            let s = slots[i]
            if s == 0 { return nil }
            if s >> 32 == tag {
                let p = Int(truncatingIfNeeded: s & 0xffff_ffff) - 1
                if MapKeyForm.matches(form, keys.baseAddress.unsafelyUnwrapped + p) { return p }
            }
            perturb >>= 5
            i = (i &* 5 &+ 1 &+ Int(truncatingIfNeeded: perturb)) & mask
        }
    }

    /// Records that position `hashes.count` holds a key with `hash` (a new key, appended).
    func append(_ hash: UInt64) {
        hashes.append(hash)
        if hashes.count * 2 > mask + 1 { grow() } else { place(hashes.count - 1) }
    }

    /// Forgets position `p`: the positions after it move down by one, as the keys do.
    func remove(at p: Int) {
        hashes.remove(at: p)
        grow()
    }

    /// Forgets every key.
    func removeAll() {
        hashes = []
        slots?.deallocate()
        slots = nil
        mask = 0
    }

    /// The same index, for a copy of its map.
    func copy() -> MapIndex {
        let c = MapIndex()
        c.hashes = hashes
        c.grow()
        return c
    }

    private func grow() {
        var size = 8
        while size < hashes.count * 2 { size *= 2 }
        slots?.deallocate()
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: size)
        table.initialize(repeating: 0, count: size)
        slots = table
        mask = size - 1
        for p in hashes.indices { place(p) }
    }

    private func place(_ p: Int) {
        guard let slots else { return }
        let h = hashes[p]
        var i = Int(truncatingIfNeeded: h) & mask, perturb = h
        while slots[i] != 0 {
            perturb >>= 5
            i = (i &* 5 &+ 1 &+ Int(truncatingIfNeeded: perturb)) & mask
        }
        slots[i] = (h >> 32) << 32 | UInt64(p + 1)
    }
}
