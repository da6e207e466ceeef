// Fully connected layer: y = x · Wᵀ + b with x [*, in], W [out, in], b [out].

extension Tensor {
    public func linear(weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        guard rank >= 1, weight.rank == 2 else {
            throw TensorError("linear", "needs input [*, in] and weight [out, in], got \(fmt(shape)) and \(fmt(weight.shape))")
        }
        let inF = shape[rank - 1], outF = weight.shape[0]
        guard weight.shape[1] == inF else {
            throw TensorError("linear", "input \(fmt(shape)) has \(inF) features but weight \(fmt(weight.shape)) expects \(weight.shape[1])")
        }
        if let bias, bias.shape != [outF] {
            throw TensorError("linear", "bias must have shape [\(outF)], got \(fmt(bias.shape))")
        }
        let x = self
        var inputs = [x, weight]
        if let bias { inputs.append(bias) }
        if rank >= 2, let shares = BatchShares.of(shape[0]) { return try linearInShares(shares, weight: weight, bias: bias, inputs: inputs) }
        let rows = count / Swift.max(inF, 1)
        try checkBLASSizes([rows, inF, outF], op: "linear", shapes: "input \(fmt(shape)) with weight \(fmt(weight.shape))")
        let out = try Tensor(uninitialized: Array(shape.dropLast()) + [outF], op: "linear")
        let po = out.storage.pointer
        sgemm(transB: true, m: rows, n: outF, k: inF, a: storage.pointer, lda: inF, b: weight.storage.pointer, ldb: inF, c: po, ldc: outF)
        if let pb = bias?.storage.pointer {
            for r in 0..<rows { for j in 0..<outF { po[r * outF + j] += pb[j] } }
        }
        return out.recorded("linear", inputs) { g, _ in
            let grads = try linearBackward(x: x, weight: weight, gradOut: g, needX: x.requiresGrad, needW: weight.requiresGrad,
                                           needB: bias?.requiresGrad == true)
            return bias == nil ? [grads.0, grads.1] : [grads.0, grads.1, grads.2]
        }
    }

    /// linear as ranks take it (see BatchShares): each share of the batch on its own, the shares'
    /// weight and bias gradients added in order.
    private func linearInShares(_ shares: [Range<Int>], weight: Tensor, bias: Tensor?, inputs: [Tensor]) throws -> Tensor {
        let x = self
        return try inShares(shares, op: "linear", inputs: inputs) { try $0.linear(weight: weight, bias: bias) } backward: { part, g in
            try linearBackward(x: part, weight: weight, gradOut: g, needX: x.requiresGrad, needW: weight.requiresGrad,
                               needB: bias?.requiresGrad == true)
        }
    }
}

/// dx = g · W, dW = gᵀ · x, db = Σ g over the rows.
private func linearBackward(x: Tensor, weight: Tensor, gradOut g: Tensor, needX: Bool, needW: Bool, needB: Bool) throws
    -> (Tensor?, Tensor?, Tensor?) {
    let inF = weight.shape[1], outF = weight.shape[0], rows = x.count / Swift.max(inF, 1)
    let pg = g.storage.pointer
    var dx: Tensor? = nil, dw: Tensor? = nil, db: Tensor? = nil
    if needX {
        let d = Tensor(shape: x.shape, storage: Storage(uninitialized: x.count))
        sgemm(m: rows, n: inF, k: outF, a: pg, lda: outF, b: weight.storage.pointer, ldb: inF, c: d.storage.pointer, ldc: inF)
        dx = d
    }
    if needW {
        let d = Tensor(shape: weight.shape, storage: Storage(uninitialized: weight.count))
        sgemm(transA: true, m: outF, n: inF, k: rows, a: pg, lda: outF, b: x.storage.pointer, ldb: inF, c: d.storage.pointer, ldc: inF)
        dw = d
    }
    if needB { db = try g.reshaped([rows, outF]).sum(axis: 0) }
    return (dx, dw, db)
}
