/// FNV-1a over words and strings: what the ranks of a run compare to find out whether they agree
/// (the notebook, the seed, the model).
public struct Fingerprint {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add(_ word: UInt64) {
        var w = word
        for _ in 0..<8 {
            value = (value ^ (w & 0xff)) &* 0x100_0000_01b3
            w >>= 8
        }
    }
    public mutating func add(_ text: String) {
        for b in text.utf8 { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
        add(UInt64(text.utf8.count))
    }
}
