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
        let rows = count / Swift.max(inF, 1)
        try checkBLASSizes([rows, inF, outF], op: "linear", shapes: "input \(fmt(shape)) with weight \(fmt(weight.shape))")
        let out = try Tensor(uninitialized: Array(shape.dropLast()) + [outF], op: "linear")
        let po = out.storage.pointer
        sgemm(transB: true, m: rows, n: outF, k: inF, a: storage.pointer, lda: inF, b: weight.storage.pointer, ldb: inF, c: po, ldc: outF)
        if let pb = bias?.storage.pointer {
            for r in 0..<rows { for j in 0..<outF { po[r * outF + j] += pb[j] } }
        }
        let x = self
        var inputs = [x, weight]
        if let bias { inputs.append(bias) }
        return out.recorded("linear", inputs) { g, _ in
            let pg = g.storage.pointer
            var dx: Tensor? = nil, dw: Tensor? = nil, db: Tensor? = nil
            if x.requiresGrad {  // dx = g · W
                let d = Tensor(shape: x.shape, storage: Storage(uninitialized: x.count))
                sgemm(m: rows, n: inF, k: outF, a: pg, lda: outF, b: weight.storage.pointer, ldb: inF, c: d.storage.pointer, ldc: inF)
                dx = d
            }
            if weight.requiresGrad {  // dW = gᵀ · x
                let d = Tensor(shape: weight.shape, storage: Storage(uninitialized: weight.count))
                sgemm(transA: true, m: outF, n: inF, k: rows, a: pg, lda: outF, b: x.storage.pointer, ldb: inF, c: d.storage.pointer, ldc: inF)
                dw = d
            }
            if bias?.requiresGrad == true { db = try g.reshaped([rows, outF]).sum(axis: 0) }
            return bias == nil ? [dx, dw] : [dx, dw, db]
        }
    }
}
