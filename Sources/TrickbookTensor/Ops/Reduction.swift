// Reductions over axes, with keepdims. A reduction over one axis views the tensor as
// (outer, n, inner) and produces (outer, inner).

extension Tensor {
    /// (outer, n, inner) for reducing `axis`.
    func splitAround(_ axis: Int) -> (outer: Int, n: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    func normalizedAxes(_ axes: [Int]?, op: String) throws -> [Int] {
        guard let axes else { return Array(0..<rank) }
        let normalized = try axes.map { try normalizeAxis($0, rank: rank, op: op) }
        guard Set(normalized).count == normalized.count else {
            throw TensorError(op, "axis listed twice in \(axes) for shape \(fmt(shape))")
        }
        return normalized.sorted()
    }

    func reducedShape(_ axes: [Int], keepdims: Bool) -> [Int] {
        keepdims ? shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
                 : shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
    }

    /// Sum over one axis, keeping it as size 1. Accumulates in Double for long reductions.
    private func sumKeeping(_ axis: Int) -> Tensor {
        let (outer, n, inner) = splitAround(axis)
        var outShape = shape
        outShape[axis] = 1
        let out = Tensor(shape: outShape, storage: Storage(uninitialized: outer * inner))
        let px = storage.pointer, po = out.storage.pointer
        if inner == 1 {
            parallelFor(outer, grain: Swift.max(1, 4096 / Swift.max(n, 1))) { r in
                for o in r {
                    var s: Double = 0
                    var k = 0
                    while k + 4 <= n {  // four partial sums vectorise and round less
                        let b = px + o * n + k
                        s += Double(b[0] + b[1]) + Double(b[2] + b[3])
                        k += 4
                    }
                    while k < n { s += Double(px[o * n + k]); k += 1 }
                    po[o] = Float(s)
                }
            }
        } else {
            parallelFor(outer * inner, grain: 4096) { r in
                // Work in runs along `inner` so the innermost loop is contiguous.
                var idx = r.lowerBound
                while idx < r.upperBound {
                    let o = idx / inner, i0 = idx % inner
                    let i1 = Swift.min(inner, i0 + (r.upperBound - idx))
                    let dst = po + o * inner
                    for i in i0..<i1 { dst[i] = 0 }
                    for k in 0..<n {
                        let src = px + (o * n + k) * inner
                        for i in i0..<i1 { dst[i] += src[i] }
                    }
                    idx += i1 - i0
                }
            }
        }
        return out
    }

    /// Sum over `axes` (all when nil).
    public func sum(axes: [Int]? = nil, keepdims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxes(axes, op: "sum")
        var r = self.detached()
        for a in ax.reversed() { r = r.sumKeeping(a) }
        let out = Tensor(shape: reducedShape(ax, keepdims: keepdims), storage: r.storage)
        let x = self
        return out.recorded("sum", [x]) { g, _ in
            [try g.reshaped(x.reducedShape(ax, keepdims: true)).broadcast(to: x.shape)]
        }
    }

    public func sum(axis: Int, keepdims: Bool = false) throws -> Tensor { try sum(axes: [axis], keepdims: keepdims) }

    /// Mean over `axes` (all when nil).
    public func mean(axes: [Int]? = nil, keepdims: Bool = false) throws -> Tensor {
        let ax = try normalizedAxes(axes, op: "mean")
        let n = ax.reduce(1) { $0 * shape[$1] }
        guard n > 0 else { throw TensorError("mean", "mean over an empty axis of shape \(fmt(shape))") }
        return try sum(axes: ax, keepdims: keepdims) * (1 / Float(n))
    }

    public func mean(axis: Int, keepdims: Bool = false) throws -> Tensor { try mean(axes: [axis], keepdims: keepdims) }

    /// Variance over `axes`: the mean squared deviation, divided by n − correction
    /// (correction 0, the default, is NumPy's; 1 is the unbiased estimate PyTorch uses by default).
    public func variance(axes: [Int]? = nil, keepdims: Bool = false, correction: Int = 0) throws -> Tensor {
        let ax = try normalizedAxes(axes, op: "var")
        let n = ax.reduce(1) { $0 * shape[$1] }
        guard correction >= 0, correction < n else {
            throw TensorError("var", "correction must be in 0..<\(n) (the elements per reduction of shape \(fmt(shape))), got \(correction)")
        }
        let d = try self - mean(axes: ax, keepdims: true)
        return try (d * d).sum(axes: ax, keepdims: keepdims) * (1 / Float(n - correction))
    }

    // MARK: max / min and their indices

    /// Extremes along one axis (all elements when nil): values and flat indices within the axis.
    private func extreme(axis: Int?, keepdims: Bool, largest: Bool, op: String) throws -> (Tensor, Tensor) {
        guard count > 0 else { throw TensorError(op, "\(op) of an empty tensor of shape \(fmt(shape))") }
        let x = axis == nil ? try reshaped([count]) : self
        let a = try normalizeAxis(axis ?? 0, rank: Swift.max(x.rank, 1), op: op)
        if x.rank == 0 { return (self, Tensor(scalar: 0)) }
        guard x.shape[a] > 0 else { throw TensorError(op, "\(op) over an empty axis \(a) of shape \(fmt(shape))") }
        let (outer, n, inner) = x.splitAround(a)
        let outShape = axis == nil ? (keepdims ? shape.map { _ in 1 } : []) : x.reducedShape([a], keepdims: keepdims)
        let values = Tensor(shape: outShape, storage: Storage(uninitialized: outer * inner))
        let indices = Tensor(shape: outShape, storage: Storage(uninitialized: outer * inner))
        let px = x.storage.pointer, pv = values.storage.pointer, pi = indices.storage.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = px[o * n * inner + i], bestK = 0
                for k in 1..<Swift.max(n, 1) {
                    let v = px[(o * n + k) * inner + i]
                    // NaN wins, as in PyTorch, so that it is never silently dropped.
                    if largest ? (v > best || v.isNaN && !best.isNaN) : (v < best || v.isNaN && !best.isNaN) { best = v; bestK = k }
                }
                pv[o * inner + i] = best
                pi[o * inner + i] = Float(bestK)
            }
        }
        let src = self
        values.recorded(op, [src]) { g, _ in
            let grad = Tensor.full([outer * n * inner], 0)
            let pg = grad.storage.pointer, pgo = g.storage.pointer, pi = indices.storage.pointer
            for o in 0..<outer { for i in 0..<inner { pg[(o * n + Int(pi[o * inner + i])) * inner + i] += pgo[o * inner + i] } }
            return [try grad.reshaped(src.shape)]
        }
        return (values, indices)
    }

    public func max(axis: Int? = nil, keepdims: Bool = false) throws -> Tensor { try extreme(axis: axis, keepdims: keepdims, largest: true, op: "max").0 }
    public func min(axis: Int? = nil, keepdims: Bool = false) throws -> Tensor { try extreme(axis: axis, keepdims: keepdims, largest: false, op: "min").0 }
    /// Index of the largest element along `axis` (of the flattened tensor when nil).
    public func argmax(axis: Int? = nil, keepdims: Bool = false) throws -> Tensor { try withNoGrad { try extreme(axis: axis, keepdims: keepdims, largest: true, op: "argmax").1 } }
    public func argmin(axis: Int? = nil, keepdims: Bool = false) throws -> Tensor { try withNoGrad { try extreme(axis: axis, keepdims: keepdims, largest: false, op: "argmin").1 } }

    /// The k largest (or smallest) elements along `axis`, sorted, and their indices.
    public func topk(_ k: Int, axis: Int = -1, largest: Bool = true) throws -> (values: Tensor, indices: Tensor) {
        let a = try normalizeAxis(axis, rank: rank, op: "topk")
        guard k >= 0 && k <= shape[a] else {
            throw TensorError("topk", "k = \(k) is out of range for axis \(a) of size \(shape[a]) in shape \(fmt(shape))")
        }
        let (outer, n, inner) = splitAround(a)
        var outShape = shape
        outShape[a] = k
        let indices = try Tensor(uninitialized: outShape, op: "topk")
        let px = storage.pointer, pi = indices.storage.pointer
        var order = [Int](repeating: 0, count: n)
        for o in 0..<outer {
            for i in 0..<inner {
                for j in 0..<n { order[j] = j }
                let key = { (j: Int) -> Float in px[(o * n + j) * inner + i] }
                order.sort { p, q in
                    let x = key(p), y = key(q)
                    if x.isNaN || y.isNaN { return x.isNaN && !y.isNaN ? largest : (!x.isNaN && y.isNaN ? !largest : p < q) }
                    return x == y ? p < q : (largest ? x > y : x < y)
                }
                for j in 0..<k { pi[(o * k + j) * inner + i] = Float(order[j]) }
            }
        }
        return (try gather(axis: a, index: indices), indices)
    }
}
