import TrickbookScript
import TrickbookTensor

/// A tensor as the language sees it: the engine's Tensor itself, so that a parameter, its `.grad`
/// and the model share storage.
final class TensorBox: HostObject, TypedHost {
    override var hostType: HostType { TensorBox.type }
    let tensor: Tensor
    init(_ tensor: Tensor) { self.tensor = tensor }

    /// A tensor, or a number as a 0-d tensor (for operators and arguments that take either).
    static func operand(_ v: Value) throws -> Tensor? {
        switch v {
        case .host(let o as TensorBox): return o.tensor
        case .int(let i): return Tensor(scalar: Float(i))
        case .float(let d): return Tensor(scalar: Float(d))
        case .bool(let b): return Tensor(scalar: b ? 1 : 0)
        default: return nil
        }
    }

    static let type: HostType = {
        let t = HostType(
            "tensor",
            doc: "A Float32 tensor (NCHW for images) that can record operations for autodiff. Prints like PyTorch's.")
        t.property(TensorBox.self, "shape") { o in ints(o.tensor.shape) }
        t.property(TensorBox.self, "ndim") { o in .int(o.tensor.rank) }
        t.property(TensorBox.self, "dtype") { _ in .string("float32") }
        t.property(TensorBox.self, "item") { o in
            guard o.tensor.count == 1 else {
                throw ScriptError("item: only a one-element tensor has an item, shape is \(o.tensor.shape)")
            }
            return fv(o.tensor.item)
        }
        t.property(
            TensorBox.self, "grad", get: { o in o.tensor.grad.map(box) ?? .nil_ },
            set: { o, v in
                guard case .nil_ = v else { throw ScriptError("grad can only be set to nil (to clear it)") }
                o.tensor.zeroGrad()
            })
        t.property(
            TensorBox.self, "requires_grad", get: { o in .bool(o.tensor.requiresGrad) },
            set: { o, v in
                guard case .bool(let b) = v else { throw ScriptError("requires_grad must be true or false") }
                guard o.tensor.isLeaf else {
                    throw ScriptError(
                        "requires_grad can be set only on a leaf tensor (one not computed by an op); use detach()")
                }
                o.tensor.requiresGrad = b
            })
        t.property(TensorBox.self, "is_leaf") { o in .bool(o.tensor.isLeaf) }
        for method in methods { t.method(method) }
        t.binary = binary
        t.subscripts(
            TensorBox.self, get: { o, s in box(try o.tensor.subscripted(try indices(s))) },
            set: { o, s, v in
                guard let value = try operand(v) else { throw ScriptError("cannot assign \(v.typeName) into a tensor") }
                try o.tensor.assign(try indices(s), value)
            })
        t.length(TensorBox.self) { o in o.tensor.shape.first ?? 1 }
        // As in PyTorch: a one-element tensor is true when non-zero; a larger one has no single truth.
        t.truthy = { o in
            guard let x = (o as? TensorBox)?.tensor else { return true }
            guard x.count == 1 else {
                throw ScriptError("the truth of a tensor of shape \(x.shape) is ambiguous: use .any() or .all()")
            }
            return x.item != 0
        }
        t.iterate(TensorBox.self) { o in
            var k = 0
            let x = o.tensor
            guard x.rank > 0 else { throw ScriptError("a 0-d tensor cannot be iterated") }
            return {
                guard k < x.shape[0] else { return nil }
                defer { k += 1 }
                return box(try x.subscripted([.at(k)]))
            }
        }
        t.describe(TensorBox.self) { o in o.tensor.formatted() }
        return t
    }()

    static func binary(_ op: String, _ a: Value, _ b: Value) throws -> Value? {
        if op == "neg", let x = try operand(a) { return box(x.neg()) }
        guard let x = try operand(a), let y = try operand(b) else { return nil }
        switch op {
        case "+": return box(try x + y)
        case "-": return box(try x - y)
        case "*": return box(try x * y)
        case "/": return box(try x / y)
        case "**": return box(try x.pow(y))
        case "@": return box(try x.matmul(y))
        case "<": return box(try x.lt(y))
        case "<=": return box(try x.le(y))
        case ">": return box(try x.gt(y))
        case ">=": return box(try x.ge(y))
        case "==": return box(try x.eq(y))
        case "!=": return box(try x.ne(y))
        default: return nil
        }
    }

    /// A script subscript as the engine's: ints, slices, `...` and nil (a new axis).
    static func indices(_ items: [Subscript]) throws -> [TensorIndex] {
        func bound(_ v: Value) throws -> Int? {
            switch v {
            case .nil_: return nil
            case .int(let n): return n
            default: throw ScriptError("tensor slice bounds must be ints or nil, got \(v.typeName)")
            }
        }
        return try items.map { item in
            switch item {
            case .ellipsis: return .ellipsis
            case .index(.nil_): return .newAxis
            case .index(.int(let n)): return .at(n)
            case .index(let v):
                throw ScriptError("a tensor index must be an int, a slice, ... or nil, got \(v.typeName)")
            case .slice(let s, let e, let st):
                return .range(start: try bound(s), end: try bound(e), step: try bound(st) ?? 1)
            }
        }
    }

    // MARK: Methods

    /// A method whose result is a tensor.
    static func m(
        _ signature: String, _ doc: String, _ example: String, _ body: @escaping (Tensor, Args) throws -> Tensor
    ) -> Builtin? {
        v(signature, doc, example) { x, a in box(try body(x, a)) }
    }

    /// A method whose result is any value.
    static func v(
        _ signature: String, _ doc: String, _ example: String, _ body: @escaping (Tensor, Args) throws -> Value
    ) -> Builtin? {
        do {
            return try Builtin(signature, doc: doc, example: example) { a in
                try body(try a.receiver(TensorBox.self).tensor, a)
            }
        } catch {
            Interpreter.registrationErrors.append(signature)
            return nil
        }
    }

    static let methods: [Builtin] = [
        // Reductions
        m(
            "sum(axis = nil, keepdims = false)", "Sum over an axis, a list of axes, or everything.",
            "x.sum(axis: 0)"
        ) { x, a in
            try x.sum(axes: try axes(a), keepdims: try a.bool("keepdims"))
        },
        m(
            "mean(axis = nil, keepdims = false)", "Mean over an axis, a list of axes, or everything.",
            "x.mean()"
        ) { x, a in
            try x.mean(axes: try axes(a), keepdims: try a.bool("keepdims"))
        },
        m(
            "variance(axis = nil, keepdims = false, correction = 1)",
            "Variance, divided by n − correction (1: unbiased, as PyTorch's var).",
            "x.variance(axis: 0)"
        ) { x, a in
            try x.variance(axes: try axes(a), keepdims: try a.bool("keepdims"), correction: try a.int("correction"))
        },
        m(
            "std(axis = nil, keepdims = false, correction = 1)", "Standard deviation, the square root of var().",
            "x.std()"
        ) { x, a in
            try x.variance(axes: try axes(a), keepdims: try a.bool("keepdims"), correction: try a.int("correction"))
                .sqrt()
        },
        m(
            "max(axis = nil, keepdims = false)", "The largest element, or the largest along an axis.",
            "x.max().item"
        ) { x, a in
            try x.max(axis: try a.intOrNil("axis"), keepdims: try a.bool("keepdims"))
        },
        m(
            "min(axis = nil, keepdims = false)", "The smallest element, or the smallest along an axis.",
            "x.min(axis: 1)"
        ) { x, a in
            try x.min(axis: try a.intOrNil("axis"), keepdims: try a.bool("keepdims"))
        },
        m(
            "argmax(axis = nil, keepdims = false)", "Index of the largest element (along an axis).",
            "x.argmax(axis: 1)"
        ) { x, a in
            try x.argmax(axis: try a.intOrNil("axis"), keepdims: try a.bool("keepdims"))
        },
        m(
            "argmin(axis = nil, keepdims = false)", "Index of the smallest element (along an axis).",
            "x.argmin(axis: 1)"
        ) { x, a in
            try x.argmin(axis: try a.intOrNil("axis"), keepdims: try a.bool("keepdims"))
        },
        v(
            "topk(k, axis = -1, largest = true)", "[values, indices] of the k largest (or smallest) along an axis.",
            "x.topk(1)"
        ) { x, a in
            let r = try x.topk(try a.int("k"), axis: try a.int("axis"), largest: try a.bool("largest"))
            return list([box(r.values), box(r.indices)])
        },
        // Elementwise
        m("exp()", "e^x elementwise.", "x.exp()") { x, _ in x.exp() },
        m("log()", "Natural log elementwise.", "x.exp().log()") { x, _ in x.log() },
        m("sqrt()", "Square root elementwise.", "x.abs().sqrt()") { x, _ in x.sqrt() },
        m("abs()", "|x| elementwise.", "x.abs()") { x, _ in x.abs() },
        m("neg()", "−x.", "x.neg()") { x, _ in x.neg() },
        m("pow(exponent)", "x to a power (a number or a tensor).", "x.pow(2)") { x, a in
            try x.pow(try a.tensorLike("exponent"))
        },
        m("clamp(min = nil, max = nil)", "Values limited to [min, max].", "x.clamp(min: 0)") { x, a in
            try x.clamp(min: try a.floatOrNil("min") ?? -.infinity, max: try a.floatOrNil("max") ?? .infinity)
        },
        m("maximum(other)", "The larger of x and other, elementwise.", "x.maximum(0)") { x, a in
            try x.maximum(try a.tensorLike("other"))
        },
        m("minimum(other)", "The smaller of x and other, elementwise.", "x.minimum(0)") { x, a in
            try x.minimum(try a.tensorLike("other"))
        },
        // Activations
        m("relu()", "max(x, 0).", "x.relu()") { x, _ in x.relu() },
        m("sigmoid()", "1 / (1 + e^−x).", "x.sigmoid()") { x, _ in x.sigmoid() },
        m("tanh()", "The hyperbolic tangent.", "x.tanh()") { x, _ in x.tanh() },
        m("silu()", "x·σ(x) (swish).", "x.silu()") { x, _ in x.silu() },
        m("gelu()", "x·Φ(x).", "x.gelu()") { x, _ in x.gelu() },
        m("softmax(axis = -1)", "Softmax along an axis.", "x.softmax(axis: 1)") { x, a in
            try x.softmax(axis: try a.int("axis"))
        },
        m("log_softmax(axis = -1)", "Log-softmax along an axis.", "x.log_softmax()") { x, a in
            try x.logSoftmax(axis: try a.int("axis"))
        },
        m(
            "dropout(p = 0.5, training = true, generator = nil)",
            "Zeroes each element with probability p and scales the rest by 1/(1 − p).",
            "x.dropout(p: 0.5, generator: generator(1))"
        ) { x, a in
            try x.dropout(p: try a.float("p"), training: try a.bool("training"), generator: try a.generator())
        },
        // Shapes
        m(
            "reshape(*shape)", "The same values in a new shape (-1 is inferred); shares storage.",
            "x.reshape(1, -1)"
        ) { x, a in
            try x.reshaped(try shapeList(a, "shape"))
        },
        m("view(*shape)", "reshape(), as PyTorch's view: shares storage.", "x.view(-1)") { x, a in
            try x.reshaped(try shapeList(a, "shape"))
        },
        m("flatten(start = 0)", "Axes from start on as one.", "x.flatten()") { x, a in
            try x.flattened(from: try a.int("start"))
        },
        m("permute(*dims)", "Axes reordered: output axis i is input axis dims[i].", "x.permute(1, 0)") { x, a in
            try x.permuted(try shapeList(a, "dims"))
        },
        m("transpose(a = -2, b = -1)", "Two axes swapped (the last two by default).", "x.transpose()") { x, a in
            try x.transposed(try a.int("a"), try a.int("b"))
        },
        m("squeeze(axis = nil)", "Without the size-1 axis (or every size-1 axis).", "x[nil].squeeze(0)") { x, a in
            try x.squeezed(axis: try a.intOrNil("axis"))
        },
        m("unsqueeze(axis)", "With a new axis of size 1.", "x.unsqueeze(0).shape") { x, a in
            try x.unsqueezed(axis: try a.int("axis"))
        },
        m(
            "index_select(axis, indices)", "The entries at `indices` (a list or tensor) along an axis.",
            "x.index_select(0, [1, 0])"
        ) { x, a in
            try x.indexSelect(
                axis: try a.int("axis"),
                indices: try TensorLibrary.indexTensor(try a.value("indices"), "index_select(): indices"))
        },
        m(
            "gather(axis, index)", "out[i][j] = x[i][index[i][j]] (along axis 1; likewise for other axes).",
            "x.gather(1, tensor([[0], [1]]))"
        ) { x, a in try x.gather(axis: try a.int("axis"), index: try a.tensor("index")) },
        m(
            "scatter_add(axis, index, source)", "A copy with source added at index along an axis.",
            "zeros([2, 2]).scatter_add(1, tensor([[0], [1]]), ones([2, 1]))"
        ) { x, a in
            try x.scatterAdd(axis: try a.int("axis"), index: try a.tensor("index"), source: try a.tensor("source"))
        },
        m("one_hot(classes)", "One-hot rows for a tensor of labels.", "tensor([0, 2]).one_hot(3)") { x, a in
            try x.oneHot(classes: try a.int("classes"))
        },
        m("matmul(other)", "The matrix product, as x @ other.", "x.matmul(x)") { x, a in
            try x.matmul(try a.tensor("other"))
        },
        // Layers as functions (PyTorch's torch.nn.functional)
        m(
            "conv2d(weight, bias = nil, stride = 1, padding = 0, dilation = 1, groups = 1)",
            "2-D convolution of [N, C, H, W] with weight [O, C/groups, kh, kw].",
            "randn([1, 1, 5, 5]).conv2d(ones([1, 1, 3, 3]), padding: 1)"
        ) { x, a in
            try x.conv2d(
                weight: try a.tensor("weight"), bias: try a.tensorOrNil("bias"), stride: try pair(a, "stride"),
                padding: try pair(a, "padding"),
                dilation: try pair(a, "dilation"), groups: try a.int("groups"))
        },
        m(
            "global_avg_pool2d()", "The mean of each channel's whole image: [N, C, H, W] → [N, C, 1, 1].",
            "ones([1, 2, 4, 4]).global_avg_pool2d().shape"
        ) { x, _ in try x.globalAvgPool2d() },
        m(
            "expand(*shape)", "The values repeated to a broadcast shape (sizes 1 stretch), as PyTorch's expand.",
            "tensor([[1], [2]]).expand(2, 3)"
        ) { x, a in try x.broadcast(to: try shapeList(a, "shape")) },
        m(
            "max_pool2d(kernel, stride = nil, padding = 0, dilation = 1, ceil_mode = false)", "Max pooling.",
            "ones([1, 1, 4, 4]).max_pool2d(2)"
        ) { x, a in
            try x.maxPool2d(
                kernel: try pair(a, "kernel"), stride: try a.isNil("stride") ? nil : try pair(a, "stride"),
                padding: try pair(a, "padding"), dilation: try pair(a, "dilation"), ceilMode: try a.bool("ceil_mode"))
        },
        m(
            """
            avg_pool2d(kernel, stride = nil, padding = 0, ceil_mode = false, count_include_pad = true)
            """, "Average pooling.",
            "ones([1, 1, 4, 4]).avg_pool2d(2)"
        ) { x, a in
            try x.avgPool2d(
                kernel: try pair(a, "kernel"), stride: try a.isNil("stride") ? nil : try pair(a, "stride"),
                padding: try pair(a, "padding"),
                ceilMode: try a.bool("ceil_mode"), countIncludePad: try a.bool("count_include_pad"))
        },
        m(
            "adaptive_avg_pool2d(size)", "Average pooling to an output size (an int or [h, w]).",
            "ones([1, 1, 5, 5]).adaptive_avg_pool2d(1)"
        ) { x, a in
            try x.adaptiveAvgPool2d(try pair(a, "size"))
        },
        m(
            """
            batch_norm(running_mean = nil, running_var = nil, weight = nil, bias = nil, training = false, momentum = \
            0.1, eps = 1e-05)
            """,
            "Batch normalization of [N, C] or [N, C, H, W]; in training the running statistics are updated in place.",
            "randn([4, 2]).batch_norm(training: true)"
        ) { x, a in
            try x.batchNorm(
                weight: try a.tensorOrNil("weight"), bias: try a.tensorOrNil("bias"),
                runningMean: try a.tensorOrNil("running_mean"),
                runningVar: try a.tensorOrNil("running_var"), training: try a.bool("training"),
                momentum: try a.float("momentum"),
                eps: try a.float("eps"))
        },
        m("linear(weight, bias = nil)", "x · weightᵀ + bias.", "x.linear(eye(2))") { x, a in
            try x.linear(weight: try a.tensor("weight"), bias: try a.tensorOrNil("bias"))
        },
        m(
            "resize(height, width)", "Bilinear resize of [N, C, H, W] (align_corners false).",
            "ones([1, 1, 4, 4]).resize(8, 8).shape"
        ) { x, a in
            try x.resizeBilinear(height: try a.int("height"), width: try a.int("width"))
        },
        // Precision
        m(
            "rounded(precision = \"bf16\")",
            "Each value rounded to FP16 or BF16 (kept as Float32; the gradient is rounded too).",
            "tensor([0.1]).rounded(\"bf16\").item"
        ) { x, a in
            guard let format = try a.choice("precision", Precision.self).format else { return x }
            return x.rounded(to: format)
        },
        v(
            "bits(precision = \"bf16\")", "The 16-bit encodings of the values, as ints.",
            "tensor([1.0]).bits(\"fp16\")"
        ) { x, a in
            guard let format = try a.choice("precision", Precision.self).format else {
                throw a.fail("precision", "must be \"fp16\" or \"bf16\"")
            }
            return ints(x.bits(format).map { Int($0) })
        },
        // Autodiff and values
        v(
            "backward(gradient = nil)",
            "Back-propagates from this tensor (one element, or given a gradient of its shape); leaf .grad add up.",
            "(w * w).sum().backward(); w.grad"
        ) { x, a in
            try x.backward(try a.tensorOrNil("gradient"))
            return .nil_
        },
        m("detach()", "The same values cut from the graph (shares storage).", "w.detach().requires_grad") { x, _ in
            x.detached()
        },
        m("clone()", "A copy with its own storage (gradients flow through it).", "x.clone()") { x, _ in x.cloned() },
        v("tolist()", "The values as nested lists (a number for a 0-d tensor).", "x.tolist()") { x, _ in
            try nestedList(x)
        },
        v("numel()", "The number of elements.", "x.numel()") { x, _ in .int(x.count) },
        v("any()", "Whether any element is non-zero.", "(x > 3).any()") { x, _ in
            .bool(x.withUnsafeBufferPointer { $0.contains { $0 != 0 } })
        },
        v("all()", "Whether every element is non-zero.", "(x > -5).all()") { x, _ in
            .bool(x.withUnsafeBufferPointer { $0.allSatisfy { $0 != 0 } })
        },
        v(
            "same_bits(other)",
            "Whether both tensors have the same shape and the same bits in every element (-0 differs from 0).",
            "x.same_bits(x.clone())"
        ) { x, a in
            let y = try a.tensor("other")
            guard x.shape == y.shape else { return .bool(false) }
            return .bool(
                x.withUnsafeBufferPointer { p in
                    y.withUnsafeBufferPointer { q in zip(p, q).allSatisfy { $0.bitPattern == $1.bitPattern } }
                })
        },
        v(
            "allclose(other, rtol = 1e-05, atol = 1e-08)", "Whether every element is close to other's.",
            "x.allclose(x)"
        ) { x, a in
            .bool(try x.allClose(try a.tensorLike("other"), rtol: try a.float("rtol"), atol: try a.float("atol")))
        },
    ].compactMap { $0 }

    // MARK: Argument forms

    /// `axis`: nil (every axis), an int, or a list of ints.
    static func axes(_ a: Args) throws -> [Int]? {
        switch try a.value("axis") {
        case .nil_: return nil
        case .int(let n): return [n]
        case .list: return try a.ints("axis")
        case let v: throw a.fail("axis", "must be an int or a list of ints, got \(v.typeName)")
        }
    }

    /// Sizes given as separate ints (`reshape(2, 3)`) or as one list (`reshape([2, 3])`).
    static func shapeList(_ a: Args, _ name: String) throws -> [Int] {
        var items = try a.list(name)
        if items.count == 1, case .list(let l) = items[0] { items = l.items }
        return try items.enumerated().map { k, v in
            guard case .int(let n) = v else { throw a.fail(name, "must be ints, item \(k) is \(v.typeName)") }
            return n
        }
    }

    /// An int used for both spatial axes, or a pair [h, w].
    static func pair(_ a: Args, _ name: String) throws -> (Int, Int) {
        if case .list = try a.value(name) {
            let p = try a.ints(name)
            guard p.count == 2 else { throw a.fail(name, "must be an int or a pair [h, w], got \(p.count) ints") }
            return (p[0], p[1])
        }
        let n = try a.int(name)
        return (n, n)
    }

    /// The values as nested lists, row by row (iterative: a tensor's rank bounds nothing).
    static func nestedList(_ x: Tensor) throws -> Value {
        // Every list and number made counts: an empty tensor of shape [2^40, 0] would otherwise
        // make 2^40 empty lists.
        var made = x.count
        for k in 1..<max(1, x.rank) {
            made += x.shape[..<k].reduce(1) { $0 &* $1 }
            guard made <= 50_000_000 else {
                throw ScriptError(
                    "tolist(): a tensor of shape \(x.shape) would make more than 50,000,000 lists and numbers")
            }
        }
        // Built in slices of about a million, with Ctrl-C checked between them.
        let scalars = x.scalars, slice = 1 << 20
        var level: [Value] = []
        level.reserveCapacity(scalars.count)
        for start in stride(from: 0, to: scalars.count, by: slice) {
            try Interruption.check("tolist()")
            level += scalars[start..<min(scalars.count, start + slice)].map(fv)
        }
        guard x.rank > 0 else { return level.first ?? .nil_ }
        for k in stride(from: x.rank - 1, through: 1, by: -1) {
            let size = x.shape[k]
            let groups = x.shape[..<k].reduce(1, *)
            var next: [Value] = []
            next.reserveCapacity(groups)
            for g in 0..<groups {
                if g & (slice - 1) == slice - 1 { try Interruption.check("tolist()") }
                next.append(list(Array(level[(g * size)..<((g + 1) * size)])))
            }
            level = next
        }
        return list(level)
    }
}
