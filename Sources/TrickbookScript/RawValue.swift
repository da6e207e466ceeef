// Numbers, bools and nil in the VM's registers read and written as bytes. Swift copies and
// destroys a `Value` through out-of-line functions that switch on its case (the cost of most
// instructions that only add two ints); these helpers read the case from the tag byte Swift
// keeps after the payload and move the payload as plain words, and take Swift's path whenever a
// value with an object in it is read or overwritten, so no reference count is ever skipped.
//
// The layout is Swift's for this enum: a word of payload (the cases whose payload is larger are
// `indirect`, boxed), then a tag byte numbering the payload cases in declaration order, nil after
// them. It is checked once at start (`Raw.probe`): if the compiler lays `Value` out otherwise,
// nothing is compiled and every function runs as a tree, so the VM itself never asks.

enum Raw {
    /// The tag byte of each case the helpers write.
    static let boolTag: UInt8 = 0, intTag: UInt8 = 1, floatTag: UInt8 = 2, nilTag: UInt8 = 11
    /// The tag byte of the cases whose object the VM reads in place (`object(_:tag:)`).
    static let stringTag: UInt8 = 3, listTag: UInt8 = 4, mapTag: UInt8 = 5, functionTag: UInt8 = 7, builtinTag: UInt8 = 8
    /// Where a string's box keeps the String, after the box's header (an `indirect` case's box).
    static let boxPayload = 16
    /// Where the tag byte is, after the payload word.
    static let tagOffset = 8

    /// Whether `Value` is laid out as these helpers assume: `probe`'s answer, recorded when a
    /// session starts (false until then: Swift's path). A plain global, read with one load: the
    /// lazy `probe` cost a `swift_once` call at every read outside the VM's loop.
    @inline(__always) static var ok: Bool { rawLayoutProbed }

    /// Checks the layout on samples of every case.
    static let probe: Bool = {
        func bytes(_ v: Value) -> [UInt8] { withUnsafeBytes(of: v) { Array($0.prefix(tagOffset + 1)) } }
        guard MemoryLayout<Value>.size == tagOffset + 1, MemoryLayout<Value>.stride == 16 else { return false }
        let x = -0x1234_5678_9abc, d = -2.75
        let int = bytes(.int(x)), float = bytes(.float(d)), yes = bytes(.bool(true)), no = bytes(.bool(false)), none = bytes(.nil_)
        let word0 = { (b: [UInt8]) in b.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } }
        guard word0(int) == UInt64(bitPattern: Int64(x)), int[tagOffset] == intTag,
              word0(float) == d.bitPattern, float[tagOffset] == floatTag,
              word0(yes) == 1, word0(no) == 0, yes[tagOffset] == boolTag, no[tagOffset] == boolTag,
              word0(none) == 0, none[tagOffset] == nilTag else { return false }
        // Every case with an object has a tag of its own, which `holdsObject` tells apart.
        var objects: [Value] = [.string("a string too long to be stored inline"), .string("ab"), .list(ListRef([])), .map(MapRef()),
                                .host(LoopItems([])), .error(ErrorValue(message: "", line: 0)),
                                .function(Function(proto: FunctionProto(name: "probe", params: [], defaults: [], file: SourceFile(name: "", text: ""),
                                                                        pos: SourcePos(line: 1, column: 1)), env: nil))]
        guard let b = try? Builtin("probe()", doc: "", { _ in .nil_ }) else { return false }
        objects.append(.builtin(b))
        objects += [.range(1, 2, inclusive: false), .range(1, 2, inclusive: true)]
        guard objects.allSatisfy({ holdsObject(tag: bytes($0)[tagOffset]) }) else { return false }
        // A list, a map, a function and a builtin: the tag, and the object's address as the word.
        let l = ListRef([]), m = MapRef(), f = Function(proto: FunctionProto(name: "probe", params: [], defaults: [], file: SourceFile(name: "", text: ""),
                                                                                pos: SourcePos(line: 1, column: 1)), env: nil)
        func holds(_ v: Value, _ o: AnyObject, _ tag: UInt8) -> Bool {
            let bs = bytes(v)
            return bs[tagOffset] == tag && word0(bs) == UInt64(UInt(bitPattern: Unmanaged.passUnretained(o).toOpaque()))
        }
        // A string: its tag, and the String's two words in its box.
        func boxes(_ s: String) -> Bool {
            let p = UnsafeMutablePointer<Value>.allocate(capacity: 1)
            defer { p.deinitialize(count: 1); p.deallocate() }
            p.initialize(to: .string(s))
            return tag(p) == stringTag && stringWords(p) == words(of: s)
        }
        return holds(.list(l), l, listTag) && holds(.map(m), m, mapTag) && holds(.function(f), f, functionTag) && holds(.builtin(b), b, builtinTag)
            && boxes("ab") && boxes("a string long enough to be kept out of line")
    }()

    /// Whether a value with this tag byte has an object in it: not a bool, int, float or nil
    /// (a range's bounds are boxed).
    @inline(__always) static func holdsObject(tag: UInt8) -> Bool { !(tag <= floatTag || tag == nilTag) }

    @inline(__always) static func tag(_ p: UnsafePointer<Value>) -> UInt8 {
        UnsafeRawPointer(p).load(fromByteOffset: tagOffset, as: UInt8.self)
    }
    @inline(__always) static func holdsObject(_ p: UnsafePointer<Value>) -> Bool { holdsObject(tag: tag(p)) }
    @inline(__always) static func int(_ p: UnsafePointer<Value>) -> Int { UnsafeRawPointer(p).load(as: Int.self) }
    /// The two words of a String (its bits: two Strings with the same bits are the same string).
    @inline(__always) static func words(of s: String) -> (UInt64, UInt64) {
        withUnsafeBytes(of: s) { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
    }
    /// The two words of the String in the box of the string value at `p` (the caller checks the tag).
    @inline(__always) static func stringWords(_ p: UnsafePointer<Value>) -> (UInt64, UInt64) {
        let box = UnsafeRawPointer(p).load(as: UnsafeRawPointer.self)
        return (box.load(fromByteOffset: boxPayload, as: UInt64.self), box.load(fromByteOffset: boxPayload + 8, as: UInt64.self))
    }

    /// The object of a value whose tag is `tag` (one of the object tags above), without a count:
    /// nil for any other value. Only where `ok` holds.
    @inline(__always) static func object<T: AnyObject>(_ p: UnsafePointer<Value>, tag: UInt8, as: T.Type) -> Unmanaged<T>? {
        guard Raw.tag(p) == tag, let o = UnsafeRawPointer(p).load(as: UnsafeRawPointer?.self) else { return nil }
        return Unmanaged<T>.fromOpaque(o)
    }
    @inline(__always) static func float(_ p: UnsafePointer<Value>) -> Double { UnsafeRawPointer(p).load(as: Double.self) }

    /// Writes a value over one without an object (the caller checks `holdsObject`).
    @inline(__always) static func set(_ p: UnsafeMutablePointer<Value>, word: UInt64, tag: UInt8) {
        let m = UnsafeMutableRawPointer(p)
        m.storeBytes(of: word, as: UInt64.self)
        m.storeBytes(of: tag, toByteOffset: tagOffset, as: UInt8.self)
    }
    @inline(__always) static func setInt(_ p: UnsafeMutablePointer<Value>, _ x: Int) { set(p, word: UInt64(bitPattern: Int64(x)), tag: intTag) }
    @inline(__always) static func setFloat(_ p: UnsafeMutablePointer<Value>, _ x: Double) { set(p, word: x.bitPattern, tag: floatTag) }
    @inline(__always) static func setBool(_ p: UnsafeMutablePointer<Value>, _ b: Bool) { set(p, word: b ? 1 : 0, tag: boolTag) }
    @inline(__always) static func setNil(_ p: UnsafeMutablePointer<Value>) { set(p, word: 0, tag: nilTag) }

    /// `dst.pointee = src.pointee` for any two values, as bytes: the new value's object (every
    /// object case holds one pointer to a Swift object: a class instance or an `indirect` box)
    /// counted, then the old one's let go, as Swift's assignment does, without its out-of-line
    /// copy and destroy that switch over the cases.
    @inline(__always) static func assign(_ dst: UnsafeMutablePointer<Value>, _ src: UnsafePointer<Value>) {
        let from = UnsafeRawPointer(src), to = UnsafeMutableRawPointer(dst)
        let word = from.load(as: UInt64.self), tag = from.load(fromByteOffset: tagOffset, as: UInt8.self)
        let oldWord = to.load(as: UInt64.self), oldTag = to.load(fromByteOffset: tagOffset, as: UInt8.self)
        if holdsObject(tag: tag) { retain(word) }
        to.storeBytes(of: word, as: UInt64.self)
        to.storeBytes(of: tag, toByteOffset: tagOffset, as: UInt8.self)
        if holdsObject(tag: oldTag) { release(oldWord) }
    }

    /// Sets `p` to nil, letting go of its object.
    @inline(__always) static func clear(_ p: UnsafeMutablePointer<Value>) {
        let m = UnsafeMutableRawPointer(p)
        let oldWord = m.load(as: UInt64.self), oldTag = m.load(fromByteOffset: tagOffset, as: UInt8.self)
        set(p, word: 0, tag: nilTag)
        if holdsObject(tag: oldTag) { release(oldWord) }
    }

    @inline(__always) private static func retain(_ word: UInt64) {
        if let o = UnsafeRawPointer(bitPattern: UInt(word)) { _ = Unmanaged<AnyObject>.fromOpaque(o).retain() }
    }
    @inline(__always) private static func release(_ word: UInt64) {
        if let o = UnsafeRawPointer(bitPattern: UInt(word)) { Unmanaged<AnyObject>.fromOpaque(o).release() }
    }

    /// Copies a value without an object over one without an object (the caller checks both).
    @inline(__always) static func copy(_ dst: UnsafeMutablePointer<Value>, _ src: UnsafePointer<Value>) {
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: tagOffset + 1)
    }
}

/// `Raw.probe`'s answer once a session has started.
nonisolated(unsafe) var rawLayoutProbed = false
