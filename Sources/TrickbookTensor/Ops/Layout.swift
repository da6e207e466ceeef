// Shape and indexing ops: reshape, permute, slice, concat, stack, index-select, gather,
// scatter-add, one-hot. Tensors are always contiguous, so all but reshape copy.

extension Tensor {
    /// The same elements in a new shape; one size may be -1 and is inferred. Shares storage.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var s = newShape
        let unknown = s.indices.filter { s[$0] == -1 }
        guard unknown.count <= 1 else { throw TensorError("reshape", "only one size may be -1, got \(fmt(newShape))") }
        if let u = unknown.first {
            let known = s.enumerated().filter { $0.offset != u }.map(\.element)
            let product = try Memory.elementCount(known, op: "reshape")
            guard product > 0, count % product == 0 else {
                throw TensorError("reshape", "cannot reshape \(fmt(shape)) (\(count) elements) to \(fmt(newShape))")
            }
            s[u] = count / product
        }
        let n = try Memory.elementCount(s, op: "reshape")
        guard n == count else {
            throw TensorError("reshape", "cannot reshape \(fmt(shape)) (\(count) elements) to \(fmt(newShape)) (\(n) elements)")
        }
        if s == shape { return self }
        let x = self
        return Tensor(shape: s, storage: storage).recorded("reshape", [x]) { g, _ in [try g.reshaped(x.shape)] }
    }

    /// Flattens axes from `start` on into one (as in PyTorch's flatten(start_dim=1) for a batch).
    public func flattened(from start: Int = 0) throws -> Tensor {
        let s = try normalizeAxis(start, rank: Swift.max(rank, 1), op: "flatten")
        guard rank > 0 else { return try reshaped([1]) }
        return try reshaped(Array(shape[..<s]) + [shape[s...].reduce(1, *)])
    }

    /// Reorders axes: output axis i is input axis dims[i].
    public func permuted(_ dims: [Int]) throws -> Tensor {
        let d = try dims.map { try normalizeAxis($0, rank: rank, op: "permute") }
        guard d.count == rank, Set(d).count == rank else {
            throw TensorError("permute", "\(dims) is not a permutation of the \(rank) axes of shape \(fmt(shape))")
        }
        if d == Array(0..<rank) { return self }
        let outShape = d.map { shape[$0] }
        let out = Tensor(shape: outShape, storage: Storage(uninitialized: count))
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let strides = d.map { inStrides[$0] }
        let px = storage.pointer, po = out.storage.pointer
        let inner = outShape[rank - 1], innerStride = strides[rank - 1]
        let outer = count / Swift.max(inner, 1)
        parallelFor(outer, grain: Swift.max(1, 8192 / Swift.max(inner, 1))) { r in
            for o in r {
                var rem = o, off = 0
                for k in stride(from: rank - 2, through: 0, by: -1) {
                    off += (rem % outShape[k]) * strides[k]
                    rem /= outShape[k]
                }
                let dst = po + o * inner
                for j in 0..<inner { dst[j] = px[off + j * innerStride] }
            }
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in d.enumerated() { inverse[a] = i }
        return out.recorded("permute", [self]) { g, _ in [try g.permuted(inverse)] }
    }

    /// Without the axis of size 1 at `axis`, or without every axis of size 1 when nil. Shares storage.
    public func squeezed(axis: Int? = nil) throws -> Tensor {
        guard let axis else { return try reshaped(shape.filter { $0 != 1 }) }
        let a = try normalizeAxis(axis, rank: rank, op: "squeeze")
        guard shape[a] == 1 else { return self }  // as in PyTorch: other sizes are left alone
        var s = shape
        s.remove(at: a)
        return try reshaped(s)
    }

    /// With a new axis of size 1 at `axis` (-1 appends). Shares storage.
    public func unsqueezed(axis: Int) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank + 1, op: "unsqueeze")
        var s = shape
        s.insert(1, at: a)
        return try reshaped(s)
    }

    /// A copy with its own storage that stays in the graph (PyTorch's clone).
    public func cloned() -> Tensor {
        copy().recorded("clone", [self]) { g, _ in [g] }
    }

    /// Whether every element is within atol + rtol·|other| of other's (broadcasting), as numpy.allclose.
    public func allClose(_ other: Tensor, rtol: Float = 1e-5, atol: Float = 1e-8) throws -> Bool {
        let close = try withNoGrad { try binaryKernel(self, other, op: "allclose") { a, b in
            Swift.abs(a - b) <= atol + rtol * Swift.abs(b) || a == b ? 1 : 0
        } }
        return close.withUnsafeBufferPointer { $0.allSatisfy { $0 == 1 } }
    }

    /// Swaps two axes.
    public func transposed(_ a: Int = -2, _ b: Int = -1) throws -> Tensor {
        guard rank >= 2 else { throw TensorError("transpose", "needs at least 2 axes, shape is \(fmt(shape))") }
        var d = Array(0..<rank)
        d.swapAt(try normalizeAxis(a, rank: rank, op: "transpose"), try normalizeAxis(b, rank: rank, op: "transpose"))
        return try permuted(d)
    }

    /// Elements start, start + step, … before `end` along `axis`. Negative start and end count from
    /// the end and out-of-range bounds are clipped, as in Python. The step must be positive.
    public func slice(axis: Int, start: Int? = nil, end: Int? = nil, step: Int = 1) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "slice")
        guard step > 0 else { throw TensorError("slice", "step must be positive, got \(step)") }
        let n = shape[a]
        func clip(_ v: Int?, _ dflt: Int) -> Int {
            guard let v else { return dflt }
            return Swift.min(Swift.max(v < 0 ? v + n : v, 0), n)
        }
        let s = clip(start, 0), e = clip(end, n)
        let m = e > s ? (e - s + step - 1) / step : 0
        if s == 0 && m == n && step == 1 { return self }
        let (outer, _, inner) = splitAround(a)
        var outShape = shape
        outShape[a] = m
        let out = Tensor(shape: outShape, storage: Storage(uninitialized: outer * m * inner))
        let px = storage.pointer, po = out.storage.pointer
        for o in 0..<outer {
            for k in 0..<m {
                (po + (o * m + k) * inner).update(from: px + (o * n + s + k * step) * inner, count: inner)
            }
        }
        let x = self
        return out.recorded("slice", [x]) { g, _ in
            let grad = Tensor.full(x.shape, 0)
            let pg = grad.storage.pointer, pgo = g.storage.pointer
            for o in 0..<outer {
                for k in 0..<m {
                    (pg + (o * n + s + k * step) * inner).update(from: pgo + (o * m + k) * inner, count: inner)
                }
            }
            return [grad]
        }
    }

    /// Joins tensors along an existing axis; other sizes must agree.
    public static func concat(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError("concat", "needs at least one tensor") }
        let a = try normalizeAxis(axis, rank: first.rank, op: "concat")
        for (i, t) in tensors.enumerated() {
            guard t.rank == first.rank, t.shape.enumerated().allSatisfy({ $0.offset == a || $0.element == first.shape[$0.offset] }) else {
                throw TensorError("concat", "tensor \(i) has shape \(fmt(t.shape)), which does not match \(fmt(first.shape)) outside axis \(a)")
            }
        }
        var outShape = first.shape
        outShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        let out = try Tensor(uninitialized: outShape, op: "concat")
        let (outer, total, inner) = out.splitAround(a)
        var offset = 0
        for t in tensors {
            let n = t.shape[a]
            for o in 0..<outer {
                (out.storage.pointer + (o * total + offset) * inner).update(from: t.storage.pointer + o * n * inner, count: n * inner)
            }
            offset += n
        }
        var starts: [Int] = []
        offset = 0
        for t in tensors { starts.append(offset); offset += t.shape[a] }
        return out.recorded("concat", tensors) { g, _ in
            try zip(tensors, starts).map { t, s in
                t.requiresGrad ? try g.slice(axis: a, start: s, end: s + t.shape[a]) : nil
            }
        }
    }

    /// Joins tensors of one shape along a new axis.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) throws -> Tensor {
        guard let first = tensors.first else { throw TensorError("stack", "needs at least one tensor") }
        let a = try normalizeAxis(axis, rank: first.rank + 1, op: "stack")
        for (i, t) in tensors.enumerated() where t.shape != first.shape {
            throw TensorError("stack", "tensor \(i) has shape \(fmt(t.shape)), tensor 0 has \(fmt(first.shape))")
        }
        var s = first.shape
        s.insert(1, at: a)
        return try concat(tensors.map { try $0.reshaped(s) }, axis: a)
    }

    /// Checks index values: integers within 0..<size (negative values count from the end).
    static func checkedIndex(_ v: Float, size: Int, op: String, axis: Int) throws -> Int {
        guard v == v.rounded(), Swift.abs(v) < 1e9 else { throw TensorError(op, "index \(v) is not an integer") }
        let i = Int(v)
        let j = i < 0 ? i + size : i
        guard j >= 0 && j < size else { throw TensorError(op, "index \(i) is out of range for axis \(axis) of size \(size)") }
        return j
    }

    /// The entries at `indices` along `axis`, in that order (repeats allowed).
    public func indexSelect(axis: Int, indices: [Int]) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "index_select")
        let (outer, n, inner) = splitAround(a)
        let idx = try indices.map { try Tensor.checkedIndex(Float($0), size: n, op: "index_select", axis: a) }
        var outShape = shape
        outShape[a] = idx.count
        let out = try Tensor(uninitialized: outShape, op: "index_select")
        let px = storage.pointer, po = out.storage.pointer, m = idx.count
        for o in 0..<outer {
            for (k, j) in idx.enumerated() { (po + (o * m + k) * inner).update(from: px + (o * n + j) * inner, count: inner) }
        }
        let x = self
        return out.recorded("index_select", [x]) { g, _ in
            let grad = Tensor.full(x.shape, 0)
            let pg = grad.storage.pointer, pgo = g.storage.pointer
            for o in 0..<outer {
                for (k, j) in idx.enumerated() {
                    let d = pg + (o * n + j) * inner, s = pgo + (o * m + k) * inner
                    for i in 0..<inner { d[i] += s[i] }
                }
            }
            return [grad]
        }
    }

    public func indexSelect(axis: Int, indices: Tensor) throws -> Tensor {
        guard indices.rank <= 1 else { throw TensorError("index_select", "indices must be 1-D, got shape \(fmt(indices.shape))") }
        let a = try normalizeAxis(axis, rank: rank, op: "index_select")
        return try indexSelect(axis: a, indices: indices.scalars.map { try Tensor.checkedIndex($0, size: shape[a], op: "index_select", axis: a) })
    }

    /// For each position p of `index` (same rank as self; sizes no larger off the axis),
    /// the flat offsets of self[p with p[axis] = index[p]] and of p in index.
    private func gatherOffsets(axis a: Int, index: Tensor, op: String) throws -> [Int] {
        guard index.rank == rank else {
            throw TensorError(op, "index of shape \(fmt(index.shape)) must have the rank of the tensor, shape \(fmt(shape))")
        }
        for d in 0..<rank where d != a && index.shape[d] > shape[d] {
            throw TensorError(op, "index of shape \(fmt(index.shape)) is larger than the tensor's \(fmt(shape)) along axis \(d)")
        }
        var strides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        var offsets = [Int](repeating: 0, count: index.count)
        let pi = index.storage.pointer
        var counter = [Int](repeating: 0, count: rank)
        for p in 0..<index.count {
            var off = 0
            for d in 0..<rank where d != a { off += counter[d] * strides[d] }
            off += try Tensor.checkedIndex(pi[p], size: shape[a], op: op, axis: a) * strides[a]
            offsets[p] = off
            var d = rank - 1
            while d >= 0 {
                counter[d] += 1
                if counter[d] < index.shape[d] { break }
                counter[d] = 0
                d -= 1
            }
        }
        return offsets
    }

    /// out[p] = self[p with p[axis] replaced by index[p]] (PyTorch's gather).
    public func gather(axis: Int, index: Tensor) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "gather")
        let offsets = try gatherOffsets(axis: a, index: index, op: "gather")
        let out = Tensor(shape: index.shape, storage: Storage(uninitialized: index.count))
        let px = storage.pointer, po = out.storage.pointer
        for (p, off) in offsets.enumerated() { po[p] = px[off] }
        let x = self
        return out.recorded("gather", [x]) { g, _ in
            let grad = Tensor.full(x.shape, 0)
            let pg = grad.storage.pointer, pgo = g.storage.pointer
            for (p, off) in offsets.enumerated() { pg[off] += pgo[p] }
            return [grad]
        }
    }

    /// A copy of self with src[p] added at self[p with p[axis] = index[p]] (PyTorch's scatter_add).
    public func scatterAdd(axis: Int, index: Tensor, source: Tensor) throws -> Tensor {
        let a = try normalizeAxis(axis, rank: rank, op: "scatter_add")
        guard source.rank == index.rank, zip(index.shape, source.shape).allSatisfy({ $0 <= $1 }) else {
            throw TensorError("scatter_add", "source of shape \(fmt(source.shape)) must cover index of shape \(fmt(index.shape))")
        }
        let offsets = try gatherOffsets(axis: a, index: index, op: "scatter_add")
        let out = copy()
        let po = out.storage.pointer, ps = source.storage.pointer
        var sStrides = [Int](repeating: 1, count: source.rank)
        for i in stride(from: source.rank - 2, through: 0, by: -1) { sStrides[i] = sStrides[i + 1] * source.shape[i + 1] }
        var iStrides = [Int](repeating: 1, count: index.rank)
        for i in stride(from: index.rank - 2, through: 0, by: -1) { iStrides[i] = iStrides[i + 1] * index.shape[i + 1] }
        // Position p of index maps to the same multi-index in source.
        let sourceOffsets: [Int] = offsets.indices.map { p in
            var rem = p, off = 0
            for d in 0..<index.rank { off += (rem / iStrides[d]) * sStrides[d]; rem %= iStrides[d] }
            return off
        }
        for (p, off) in offsets.enumerated() { po[off] += ps[sourceOffsets[p]] }
        let src = source
        return out.recorded("scatter_add", [self, source]) { g, _ in
            var srcGrad: Tensor? = nil
            if src.requiresGrad {
                let sg = Tensor.full(src.shape, 0)
                let pg = g.storage.pointer, psg = sg.storage.pointer
                for (p, off) in offsets.enumerated() { psg[sourceOffsets[p]] = pg[off] }
                srcGrad = sg
            }
            return [g, srcGrad]
        }
    }

    /// Integer labels → one-hot rows: shape + [classes].
    public func oneHot(classes: Int) throws -> Tensor {
        guard classes > 0 else { throw TensorError("one_hot", "classes must be positive, got \(classes)") }
        let out = try Tensor.zeros(shape + [classes])
        let p = storage.pointer, po = out.storage.pointer
        for i in 0..<count {
            let v = p[i]
            guard v == v.rounded(), v >= 0, v < Float(classes) else {
                throw TensorError("one_hot", "label \(v) at position \(i) is not an integer in 0..<\(classes)")
            }
            po[i * classes + Int(v)] = 1
        }
        return out
    }
}
