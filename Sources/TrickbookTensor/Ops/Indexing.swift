// Basic indexing as in PyTorch: x[i], x[a:b:s], x[..., j], x[None] over several axes, and
// assignment into such a region. Reading is one recorded op: forward gathers the selected
// elements, backward scatters the gradient back into zeros of the input's shape.

/// One item of a subscript.
public enum TensorIndex: Equatable {
    /// One position (negative counts from the end); the axis goes away.
    case at(Int)
    /// Positions start, start + step, … before end (Python's clipping; step positive).
    case range(start: Int?, end: Int?, step: Int)
    /// `...`: as many whole axes as the other items leave.
    case ellipsis
    /// `nil`: a new axis of size 1.
    case newAxis
}

extension Tensor {
    /// The shape and the flat offsets of the elements `items` select, in row-major order.
    func selection(_ items: [TensorIndex], op: String) throws -> (shape: [Int], offsets: [Int]) {
        let consumed = items.filter { $0 != .ellipsis && $0 != .newAxis }.count
        let ellipses = items.filter { $0 == .ellipsis }.count
        guard ellipses <= 1 else { throw TensorError(op, "an index can hold only one '...'") }
        guard consumed <= rank else {
            throw TensorError(op, "too many indices (\(consumed)) for a tensor of shape \(fmt(shape))")
        }
        var expanded: [TensorIndex] = []
        for item in items {
            if item == .ellipsis {
                expanded += [TensorIndex](repeating: .range(start: nil, end: nil, step: 1), count: rank - consumed)
            } else {
                expanded.append(item)
            }
        }
        if ellipses == 0 { expanded += [TensorIndex](repeating: .range(start: nil, end: nil, step: 1), count: rank - consumed) }
        // Per input axis: the positions taken, and whether the axis stays in the output.
        var outShape: [Int] = []
        var picks: [[Int]] = []
        var axis = 0
        for item in expanded {
            switch item {
            case .newAxis:
                outShape.append(1)
            case .at(let i):
                let n = shape[axis], j = i < 0 ? i + n : i
                guard j >= 0 && j < n else {
                    throw TensorError(op, "index \(i) is out of range for axis \(axis) of size \(n) in shape \(fmt(shape))")
                }
                picks.append([j])
                axis += 1
            case .range(let start, let end, let step):
                guard step > 0 else { throw TensorError(op, "slice step must be positive (as in PyTorch), got \(step)") }
                let n = shape[axis]
                func clip(_ v: Int?, _ dflt: Int) -> Int {
                    guard let v else { return dflt }
                    return Swift.min(Swift.max(v < 0 ? v + n : v, 0), n)
                }
                let s = clip(start, 0), e = clip(end, n)
                // k·step stays below e − s ≤ n: no overflow whatever the step.
                let count = e > s ? (e - s - 1) / step + 1 : 0
                let taken = (0..<count).map { s + $0 * step }
                picks.append(taken)
                outShape.append(taken.count)
                axis += 1
            case .ellipsis:
                break
            }
        }
        // Row-major strides of the input, then every combination of the picks.
        var strides = [Int](repeating: 1, count: rank)
        for d in Swift.stride(from: rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        var offsets = [0]
        for (d, p) in picks.enumerated() {
            var next: [Int] = []
            next.reserveCapacity(offsets.count * p.count)
            for o in offsets { for j in p { next.append(o + j * strides[d]) } }
            offsets = next
        }
        return (outShape, offsets)
    }

    /// x[items]: a new tensor (gradients flow back to the selected elements).
    public func subscripted(_ items: [TensorIndex]) throws -> Tensor {
        let (outShape, offsets) = try selection(items, op: "index")
        let out = try Tensor(uninitialized: outShape, op: "index")
        let px = storage.pointer, po = out.storage.pointer
        for (k, o) in offsets.enumerated() { po[k] = px[o] }
        let x = self
        return out.recorded("index", [x]) { g, _ in
            let grad = Tensor.full(x.shape, 0)
            let pg = grad.storage.pointer, pgo = g.storage.pointer
            for (k, o) in offsets.enumerated() { pg[o] += pgo[k] }
            return [grad]
        }
    }

    /// x[items] = value, in place (value broadcasts to the region). Not recorded: a tensor that
    /// takes part in autodiff can be written only inside no_grad, as in PyTorch.
    public func assign(_ items: [TensorIndex], _ value: Tensor) throws {
        if GradMode.isEnabled && requiresGrad {
            throw TensorError("index assignment", "tensor \(label) requires gradients: write into it inside no_grad, or into a detach()ed copy")
        }
        let (outShape, offsets) = try selection(items, op: "index assignment")
        let v = value.shape == outShape ? value : try value.broadcast(to: outShape)
        let pv = v.storage.pointer, px = storage.pointer
        for (k, o) in offsets.enumerated() { px[o] = pv[k] }
    }
}
