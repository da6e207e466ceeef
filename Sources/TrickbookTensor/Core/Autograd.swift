import CShims
/// Reverse-mode automatic differentiation.
///
/// Every op that reads a tensor requiring gradients records a `Node` on its output: the inputs and a
/// closure that maps the output's gradient to the inputs' gradients. The closure sits beside the op's
/// forward code (see `Ops/`). `backward()` walks the recorded graph once in reverse topological order.
final class Node {
    let op: String
    private(set) var inputs: [Tensor]
    /// (gradient of the output, the output itself) → gradients of the inputs, in order (nil: none).
    private(set) var backward: (Tensor, Tensor) throws -> [Tensor?]

    init(op: String, inputs: [Tensor], backward: @escaping (Tensor, Tensor) throws -> [Tensor?]) {
        self.op = op
        self.inputs = inputs
        self.backward = backward
    }

    /// Frees the graph behind this node with a loop, not recursion: a script can build a chain of
    /// millions of ops (`x = x + 1` in a loop), and releasing it node by node would overflow the stack.
    deinit {
        var pending = detach()
        while var tensor = pending.popLast() {
            // Only a tensor nobody else holds takes its node with it; its inputs then come here.
            guard isKnownUniquelyReferenced(&tensor), var node = tensor.node else { continue }
            tensor.node = nil
            if isKnownUniquelyReferenced(&node) { pending += node.detach() }
        }
    }

    /// Empties this node: its inputs, and the closure (which holds the same tensors again).
    private func detach() -> [Tensor] {
        let taken = inputs
        inputs = []
        backward = { _, _ in [] }
        return taken
    }
}

public enum GradMode {
    @TaskLocal static var enabled = true
    /// Whether operations currently record the graph.
    public static var isEnabled: Bool { enabled }
}

/// Runs `body` without recording operations: for evaluation, optimizer updates and teachers.
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.$enabled.withValue(false) { try body() }
}

extension Tensor {
    /// Attaches the backward closure when gradients are on and some input requires them.
    @discardableResult
    func recorded(_ op: String, _ inputs: [Tensor], _ backward: @escaping (Tensor, Tensor) throws -> [Tensor?]) -> Tensor {
        guard GradMode.enabled, inputs.contains(where: { $0.requiresGrad }) else { return self }
        requiresGrad = true
        node = Node(op: op, inputs: inputs, backward: backward)
        return self
    }

    /// Whether this tensor is a leaf of the graph (made by the user, not by an op).
    public var isLeaf: Bool { node == nil }

    /// Back-propagates from this tensor. Without `gradient` the tensor must have one element, and the
    /// seed is 1. Leaf gradients accumulate into `grad` across calls, as in PyTorch.
    public func backward(_ gradient: Tensor? = nil) throws {
        guard requiresGrad else {
            throw TensorError("backward", "tensor \(label) does not require gradients: no input of its graph has requiresGrad set")
        }
        let seed: Tensor
        if let g = gradient {
            guard g.shape == shape else {
                throw TensorError("backward", "gradient of shape \(fmt(g.shape)) for a tensor of shape \(fmt(shape))")
            }
            seed = g
        } else {
            guard count == 1 else {
                throw TensorError("backward", "called on tensor of shape \(fmt(shape)) without a gradient: only a one-element tensor has an implicit gradient of 1")
            }
            seed = Tensor.full(shape, 1)
        }
        let order = topologicalOrder()
        // Each pending gradient remembers whether its storage is ours alone: then a leaf can take it
        // as its `.grad` without a copy. A pass-through (add, reshape) or the caller's seed is not.
        var grads: [ObjectIdentifier: (tensor: Tensor, owned: Bool)] = [ObjectIdentifier(self): (seed, gradient == nil)]
        do { try propagate(order, &grads) } catch {
            // Stopped half-way (Ctrl-C, a failed op): the gradients of this pass are incomplete,
            // and an optimizer must not step on them.
            for t in order where t.isLeaf { t.grad = nil }
            throw error
        }
    }

    private func propagate(_ order: [Tensor], _ grads: inout [ObjectIdentifier: (tensor: Tensor, owned: Bool)]) throws {
        try withNoGrad {
            for t in order.reversed() {
                guard let (g, owned) = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                try Interruption.check("backward")
                guard let node = t.node else {
                    t.accumulateGrad(g, owned: owned)
                    for h in t.gradientHooks { try h.hook() }
                    continue
                }
                let inputGrads = try node.backward(g, t)
                for (i, (input, ig)) in zip(node.inputs, inputGrads).enumerated() {
                    guard input.requiresGrad, let ig else { continue }
                    guard ig.shape == input.shape else {
                        throw TensorError("backward", "internal: \(node.op) produced a gradient of shape \(fmt(ig.shape)) for an input of shape \(fmt(input.shape))")
                    }
                    let shared = ig.heldStorage === g.heldStorage
                        || inputGrads[..<i].contains { $0?.heldStorage === ig.heldStorage }
                        || inputGrads[(i + 1)...].contains { $0?.heldStorage === ig.heldStorage }
                    let key = ObjectIdentifier(input)
                    if let (existing, owned) = grads[key] {
                        // A gradient that is ours alone takes the next one in place (residual joins).
                        if !(owned && existing.accumulate(ig)) { grads[key] = (try existing + ig, true) }
                    } else {
                        grads[key] = (ig, !shared)
                    }
                }
            }
        }
    }

    private func accumulateGrad(_ g: Tensor, owned: Bool) {
        if let existing = grad {
            existing.addInPlace(g)
        } else {
            grad = owned ? Tensor(shape: shape, storage: g.storage) : g.copy()
        }
    }

    /// Tensors of the graph ending here, each after all of its inputs (iterative: deep graphs are fine).
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            guard visited.insert(ObjectIdentifier(t)).inserted else { continue }
            stack.append((t, true))
            for input in t.node?.inputs ?? [] where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order
    }

    /// self += other in place when both have one shape and hold their elements the same way;
    /// false (nothing done) otherwise.
    fileprivate func accumulate(_ other: Tensor) -> Bool {
        guard shape == other.shape, heldStorage !== other.heldStorage,
              layout == other.layout || (layout.isBlocked && other.layout.isBlocked) else { return false }
        let p = heldStorage.pointer, q = UnsafePointer(other.heldStorage.pointer)
        let types = layout.bf16Bit(TB_A_BF16) | other.layout.bf16Bit(TB_B_BF16) | layout.bf16Bit(TB_O_BF16)
        parallelFor(count, grain: 1 << 15) { r in FastBinary.add.apply(UnsafePointer(p), q, p, r, types: types) }
        return true
    }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }

    /// self += other, elementwise, same shape; used for gradient accumulation and optimizers.
    func addInPlace(_ other: Tensor, scale: Float = 1) {
        let n = count, p = storage.pointer, q = other.storage.pointer
        parallelFor(n, grain: 1 << 16) { r in
            for i in r { p[i] += scale * q[i] }
        }
    }
}

extension Tensor {
    /// One SGD step on this parameter, in one pass and bitwise as the separate ops give it:
    /// d = grad + self·weightDecay; with momentum b = old·momentum + d (d at the first step) and
    /// d = nesterov ? d + b·momentum : b; self −= lr·d. Returns the new momentum buffer (nil without
    /// momentum), a new tensor: a buffer handed out earlier keeps its values.
    public func sgdStep(grad: Tensor, momentumBuffer old: Tensor?, lr: Float, momentum: Float, weightDecay: Float,
                        nesterov: Bool) throws -> Tensor? {
        guard grad.shape == shape, old?.shape ?? shape == shape else {
            throw TensorError("sgd", "gradient \(fmt(grad.shape)) or momentum buffer \(fmt(old?.shape ?? shape)) does not fit \(label)")
        }
        let b = momentum != 0 ? Tensor(uninitialized: shape, count: count, layout: .plain) : nil
        let p = storage.pointer, g = UnsafePointer(grad.storage.pointer), o = old.map { UnsafePointer($0.storage.pointer) }
        let bp = b?.storage.pointer
        parallelFor(count, grain: 1 << 15) { r in
            tb_sgd_update(p, g, o, bp, lr, momentum, weightDecay, nesterov ? 1 : 0, Int64(r.lowerBound), Int64(r.upperBound))
        }
        return b
    }

    /// The loss scaler's pass over a gradient, in place and unrecorded: self *= inv; whether every
    /// value was finite, and how many non-zero values (before scaling) round to zero in FP16
    /// (`fp16`) or else BF16.
    public func unscale(by inv: Float, fp16: Bool) -> (finite: Bool, roundsToZero: Int) {
        let p = storage.pointer, n = count, chunks = chunkCount(n, grain: 1 << 16)
        var finite = [Bool](repeating: true, count: chunks), zeros = [Int64](repeating: 0, count: chunks)
        finite.withUnsafeMutableBufferPointer { f in
            zeros.withUnsafeMutableBufferPointer { z in
                parallelChunks(n, grain: 1 << 16) { c, r in
                    f[c] = tb_unscale(p + r.lowerBound, Int64(r.count), inv, fp16 ? 1 : 0, &z[c]) != 0
                }
            }
        }
        return (!finite.contains(false), Int(zeros.reduce(0, +)))
    }

    /// self −= scale · other, in place and unrecorded: the primitive an optimizer step uses.
    public func update(subtracting other: Tensor, scale: Float) throws {
        guard other.shape == shape else {
            throw TensorError("update", "update of shape \(fmt(other.shape)) for tensor \(label)")
        }
        addInPlace(other, scale: -scale)
    }
}
