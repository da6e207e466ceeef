import TrickbookModels
import TrickbookScript
import TrickbookTensor

/// Layers as modules to build networks with, and modules written in the language: named children
/// and parameters, and a forward that is a script function.
enum LayerLibrary: Library {
    static let rows: [Row] = [
        Row(
            """
            conv2d(in_channels, out_channels, kernel, stride = 1, padding = 0, groups = 1, bias = false, init = \
            \"xavier\", seed = nil)
            """,
            doc: "A 2-D convolution layer (weight [out, in/groups, k, k]); its weight decays under no_bias_decay.",
            example: "conv2d(16, 32, 3, stride: 2, padding: 1)"
        ) { a in
            layer(
                try Conv2d(
                    try a.int("in_channels", in: 1...maxChannels), try a.int("out_channels", in: 1...maxChannels),
                    kernel: try a.int("kernel", in: 1...maxKernel), stride: try a.int("stride", in: 1...maxKernel),
                    padding: try a.int("padding", in: 0...maxKernel), groups: try a.int("groups", in: 1...maxChannels),
                    bias: try a.bool("bias"),
                    initializer: try a.choice("init", Initializer.self), generator: Generator(seed: try a.seed())))
        },
        Row(
            "batch_norm(channels, zero_gamma = false, momentum = 0.1, eps = 1e-05)",
            doc: "A batch-norm layer (γ, β, running statistics); zero_gamma starts γ at 0, as for a block's last BN.",
            example: "batch_norm(16, zero_gamma: true)"
        ) { a in
            layer(
                try BatchNorm2d(
                    try positive(a, "channels"), momentum: try a.float("momentum"), eps: try a.float("eps"),
                    zeroGamma: try a.bool("zero_gamma")))
        },
        Row(
            "linear(in_features, out_features, bias = true, init = \"xavier\", seed = nil)",
            doc: "A fully connected layer: x · weightᵀ + bias.",
            example: "linear(64, 10)"
        ) { a in
            layer(
                try Linear(
                    try a.int("in_features", in: 1...(1 << 24)), try a.int("out_features", in: 1...(1 << 24)),
                    bias: try a.bool("bias"),
                    initializer: try a.choice("init", Initializer.self), generator: Generator(seed: try a.seed())))
        },
        Row("relu()", doc: "The ReLU layer: max(x, 0).", example: "relu()") { _ in layer(ReLU()) },
        Row("swish()", doc: "The swish (SiLU) layer: x·σ(x).", example: "swish()") { _ in layer(Swish()) },
        Row(
            "identity()",
            doc: "A layer that passes its input through.",
            example: "identity()"
        ) { _ in layer(Identity()) },
        Row("flatten()", doc: "Flattens every axis after the first.", example: "flatten()") { _ in layer(Flatten()) },
        Row(
            "global_avg_pool()", doc: "Averages each channel over its whole image: [N, C, H, W] → [N, C, 1, 1].",
            example: "global_avg_pool()"
        ) { _ in layer(GlobalAvgPool()) },
        Row(
            "max_pool2d(kernel, stride = nil, padding = 0)",
            doc: "A max-pooling layer (stride defaults to the kernel).",
            example: "max_pool2d(3, stride: 2, padding: 1)"
        ) { a in
            let k = try positive(a, "kernel")
            return layer(
                MaxPool2d(
                    kernel: k, stride: try a.intOrNil("stride") ?? k, padding: try a.int("padding", in: 0...maxKernel)))
        },
        Row(
            "avg_pool2d(kernel, stride = nil, ceil_mode = false, count_include_pad = true)",
            doc: """
                An average-pooling layer (ResNet-D's shortcut: avg_pool2d(2, ceil_mode: true, count_include_pad: \
                false)).
                """,
            example: "avg_pool2d(2, ceil_mode: true, count_include_pad: false)"
        ) { a in
            let k = try positive(a, "kernel")
            return layer(
                AvgPool2d(
                    kernel: k, stride: try a.intOrNil("stride") ?? k, ceilMode: try a.bool("ceil_mode"),
                    countIncludePad: try a.bool("count_include_pad")))
        },
        Row(
            "dropout(p = 0.5, seed = nil)",
            doc: "A dropout layer (active in train(), off in eval()).",
            example: "dropout(p: 0.2)"
        ) { a in
            let p = try a.float("p")
            guard p >= 0 && p < 1 else { throw a.fail("p", "must be in [0, 1), got \(p)") }
            return layer(Dropout(p: p, generator: Generator(seed: try a.seed())))
        },
        Row(
            "sequential(layers)", doc: "Layers run one after another, named \"0\", \"1\", ….",
            example: "sequential([conv2d(1, 8, 3, padding: 1), batch_norm(8), relu()])"
        ) { a in
            layer(
                Sequential(try a.list("layers").enumerated().map { k, v in try moduleValue(v, a, "layers", item: k) }))
        },
        Row(
            "residual(body, shortcut = nil, activation = \"relu\")",
            doc: "A residual connection: act(body(x) + shortcut(x)), the shortcut the identity when nil.",
            example: "residual(sequential([conv2d(8, 8, 3, padding: 1), batch_norm(8, zero_gamma: true)]))"
        ) { a in
            let shortcut = try a.isNil("shortcut") ? nil : try moduleValue(try a.value("shortcut"), a, "shortcut")
            return layer(
                Residual(
                    try moduleValue(try a.value("body"), a, "body"), shortcut: shortcut,
                    activation: try a.choice("activation", Activation.self)))
        },
        Row(
            "module(name, members, forward)",
            doc: """
                A module written in the language: members maps names to layers (children) and tensors \
                (parameters); forward(m, x) computes the output, reaching members as m.name. It prints in \
                summary(), saves and loads by name, and joins the optimizer's groups as built-in layers do.
                """,
            example: "module(\"Scale\", {\"gamma\": ones([1, 8, 1, 1])}, fn(m, x) => x * m.gamma)", module),
        Row(
            "buffer(tensor)", doc: "Marks a tensor as a module's buffer (saved, not trained), for module().",
            example: "module(\"Counter\", {\"seen\": buffer(zeros([1]))}, fn(m, x) => x)"
        ) { a in
            .host(BufferBox(try a.tensor("tensor")))
        },
    ]

    static let types: [HostType] = [BufferBox.type]

    static func layer(_ m: Module) -> Value { .host(ModelBox(m)) }

    /// Bounds that keep a layer's size arithmetic far from overflow (memory is checked apart).
    static let maxChannels = 1 << 16, maxKernel = 1024

    static func positive(_ a: Args, _ name: String) throws -> Int { try a.int(name, in: 1...(1 << 20)) }

    /// A layer to put inside another: not nested deeper than `Module.maxHeight` already.
    static func moduleValue(_ v: Value, _ a: Args, _ name: String, item: Int? = nil) throws -> Module {
        guard case .host(let m as ModelBox) = v else {
            throw a.fail(name, "\(item.map { "item \($0) " } ?? "")must be a layer or model, got \(v.typeName)")
        }
        guard m.model.height < Module.maxHeight else {
            throw a.fail(name, "nests modules \(m.model.height) deep; at most \(Module.maxHeight) levels can be nested")
        }
        return m.model
    }

    static func module(_ a: Args) throws -> Value {
        guard let forward = try a.callback("forward") else { throw a.fail("forward", "must be a function fn(m, x)") }
        guard case .map(let members) = try a.value("members") else {
            throw a.fail("members", "must be a map of names to layers and tensors")
        }
        let m = ScriptModule(name: try a.string("name"), forward: forward)
        for (k, v) in zip(members.keys, members.values) {
            guard case .string(let key) = k, !key.isEmpty, !key.contains(".") else {
                throw a.fail("members", "has the key \(k.repr): names are non-empty strings without dots")
            }
            // m.name must reach the member, not a method or property of every model.
            guard ModelBox.type.methods[key] == nil, ModelBox.type.properties[key] == nil else {
                throw a.fail("members", "has the key \"\(key)\", which every model already has as a method or property")
            }
            if case .host(let child as ModelBox) = v { _ = try moduleValue(.host(child), a, "members") }
            try m.add(key, v)
        }
        return layer(m)
    }
}
