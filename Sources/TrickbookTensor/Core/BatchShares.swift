// One process computing as N data-parallel ranks do. Ranks differ from one process of their
// global batch only in how sums over the batch are rounded: each rank sums its share (a weight's
// gradient, batch norm's statistics), then the shares' sums are added. With `BatchShares.count`
// set to N, the ops whose results mix images (convolution, linear, batch norm) take each share
// of the batch as a rank would (the same kernels on the same share) and add the shares' sums in
// order. One process then computes bitwise what 2 ranks with synchronised batch norm compute, on
// the ranks' thread count: a check of data-parallel training that rounding cannot blur. FP32 only.

public enum BatchShares {
    /// Into how many shares sums over the batch are split for the session (the language's
    /// `as_ranks`; 1: the whole batch at once).
    nonisolated(unsafe) public static var requested = 1
    /// The same for a scope (a share's own ops take their batch whole; tests).
    @TaskLocal public static var scoped: Int?
    public static var count: Int { scoped ?? requested }

    /// The shares of a batch of `n` images (as the loader splits a global batch among ranks:
    /// share i is i·n/N ..< (i+1)·n/N), or nil when the batch is taken whole.
    static func of(_ n: Int) -> [Range<Int>]? {
        let k = count
        guard k > 1, n >= k else { return nil }
        return (0..<k).map { i in (i * n / k)..<((i + 1) * n / k) }
    }

    /// `body` with the batch taken whole: what a rank does with its share.
    static func whole<T>(_ body: () throws -> T) rethrows -> T { try $scoped.withValue(1) { try body() } }
}

extension Tensor {
    /// Images `r` of a batch (the first axis), held as this tensor is: a copy.
    func batchSlice(_ r: Range<Int>) -> Tensor {
        let per = heldStorage.count / Swift.max(shape[0], 1)
        let t = Tensor(shape: [r.count] + shape.dropFirst(), storage: Storage(uninitialized: per * r.count), layout: layout)
        t.heldStorage.pointer.update(from: heldStorage.pointer + r.lowerBound * per, count: per * r.count)
        return t
    }

    /// The batches of `parts` one after another, held as the first part is (each part is read
    /// in that layout).
    static func joiningBatches(_ parts: [Tensor]) -> Tensor {
        let first = parts[0], layout = parts.allSatisfy({ $0.layout == first.layout }) ? first.layout : .plain
        let n = parts.reduce(0) { $0 + $1.shape[0] }
        let t = Tensor(shape: [n] + first.shape.dropFirst(), storage: Storage(uninitialized: parts.reduce(0) { $0 + $1.heldCount(layout) }), layout: layout)
        var at = t.heldStorage.pointer
        for p in parts {
            let src = layout == .plain ? p.storage : p.heldStorage
            let k = p.heldCount(layout)
            at.update(from: src.pointer, count: k)
            at += k
        }
        return t
    }

    private func heldCount(_ l: Layout) -> Int { l == .plain ? count : heldStorage.count }

    /// An op that mixes images (convolution, linear), taken share by share as ranks take it:
    /// `forward` on each share's images (the batch whole), then, backward, `backward` on each
    /// share's images and gradient, giving (dx, dw, db); the dx are joined, the dw and db added
    /// in order.
    func inShares(_ shares: [Range<Int>], op: String, inputs: [Tensor], forward: (Tensor) throws -> Tensor,
                  backward: @escaping (Tensor, Tensor) throws -> (Tensor?, Tensor?, Tensor?)) throws -> Tensor {
        let parts = shares.map { batchSlice($0) }
        let outs = try BatchShares.whole { try withNoGrad { try parts.map(forward) } }
        return Tensor.joiningBatches(outs).recorded(op, inputs) { g, _ in
            var dx: [Tensor] = [], dw: [Tensor?] = [], db: [Tensor?] = []
            for (r, part) in zip(shares, parts) {
                let (a, b, c) = try BatchShares.whole { try backward(part, g.batchSlice(r)) }
                if let a { dx.append(a) }
                dw.append(b)
                db.append(c)
            }
            return [dx.isEmpty ? nil : Tensor.joiningBatches(dx), Tensor.summingInOrder(dw), Tensor.summingInOrder(db)]
        }
    }

    /// Adds `parts` element by element, in order (the shares' sums); nil parts are skipped.
    static func summingInOrder(_ parts: [Tensor?]) -> Tensor? {
        let present = parts.compactMap { $0 }
        guard let first = present.first else { return nil }
        let t = first.copy(), p = t.storage.pointer
        for part in present.dropFirst() {
            let q = part.storage.pointer
            for i in 0..<t.count { p[i] += q[i] }
        }
        return t
    }
}
