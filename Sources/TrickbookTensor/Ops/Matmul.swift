// Matrix products through cblas_sgemm: 2-D and batched (batch axes broadcast as in NumPy).

extension Tensor {
    /// op(a) · op(b) over the last two axes, batch axes broadcast. op transposes when asked.
    static func matmulCore(_ a: Tensor, _ b: Tensor, transA: Bool, transB: Bool, op: String) throws -> Tensor {
        guard a.rank >= 2, b.rank >= 2 else {
            throw TensorError(op, "needs tensors with at least 2 axes, got \(fmt(a.shape)) and \(fmt(b.shape))")
        }
        let ar = a.shape[a.rank - 2], ac = a.shape[a.rank - 1], br = b.shape[b.rank - 2], bc = b.shape[b.rank - 1]
        let (m, k) = transA ? (ac, ar) : (ar, ac)
        let (k2, n) = transB ? (bc, br) : (br, bc)
        guard k == k2 else {
            throw TensorError(op, "inner sizes differ: \(fmt(a.shape)) @ \(fmt(b.shape)) (\(k) vs \(k2))")
        }
        try checkBLASSizes([ar, ac, br, bc], op: op, shapes: "\(fmt(a.shape)) @ \(fmt(b.shape))")
        let aBatch = Array(a.shape.dropLast(2)), bBatch = Array(b.shape.dropLast(2))
        let batch = try broadcastShape(aBatch, bBatch, op: op)
        let out = try Tensor(uninitialized: batch + [m, n], op: op)
        let count = batch.reduce(1, *)
        let sa = broadcastStrides(aBatch, to: batch), sb = broadcastStrides(bBatch, to: batch)
        let pa = a.storage.pointer, pb = b.storage.pointer, po = out.storage.pointer
        // A large product runs in blocks of rows of about 2^30 multiply-adds, with a check for
        // Ctrl-C between blocks (one 9000×9000 product is 7 s here).
        let rowsPerBlock = Swift.max(1, (1 << 30) / Swift.max(1, n * k))
        for i in 0..<count {
            let (offA, offB) = broadcastOffsets(i, batch, rank: batch.count, sa, sb)
            let baseA = pa + offA * ar * ac, baseB = pb + offB * br * bc, baseC = po + i * m * n
            for r0 in stride(from: 0, to: m, by: rowsPerBlock) {
                if r0 > 0 || i > 0 { try Interruption.check(op) }
                let rows = Swift.min(rowsPerBlock, m - r0)
                // Row r of op(A) starts at row r of A, or at column r when A is transposed.
                let blockA = transA ? baseA + r0 : baseA + r0 * ac
                sgemm(transA: transA, transB: transB, m: rows, n: n, k: k,
                      a: blockA, lda: ac, b: baseB, ldb: bc, c: baseC + r0 * n, ldc: n)
            }
        }
        return out
    }

    /// Matrix product. 1-D operands are treated as a row (left) or a column (right) vector and
    /// that axis is dropped from the result, as in NumPy.
    public func matmul(_ other: Tensor) throws -> Tensor {
        if rank == 1 || other.rank == 1 {
            let a = rank == 1 ? try reshaped([1, count]) : self
            let b = other.rank == 1 ? try other.reshaped([other.count, 1]) : other
            var r = try a.matmul(b)
            if rank == 1 { r = try r.reshaped(Array(r.shape.dropLast(2)) + [r.shape[r.rank - 1]]) }
            if other.rank == 1 { r = try r.reshaped(Array(r.shape.dropLast())) }
            return r
        }
        let a = self, b = other
        return try Tensor.matmulCore(a, b, transA: false, transB: false, op: "matmul").recorded("matmul", [a, b]) { g, _ in
            // dA = g · Bᵀ, dB = Aᵀ · g, summed over broadcast batch axes.
            [a.requiresGrad ? try Tensor.matmulCore(g, b, transA: false, transB: true, op: "matmul").sumTo(a.shape) : nil,
             b.requiresGrad ? try Tensor.matmulCore(a, g, transA: true, transB: false, op: "matmul").sumTo(b.shape) : nil]
        }
    }
}
