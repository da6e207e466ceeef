import TrickbookModels
import TrickbookScript
import TrickbookTensor

/// Models: the ResNet family with the paper's tweaks, inspectors, and the model type (callable,
/// with its parameters, buffers and submodules open to the language).
enum ModelLibrary: Library {
    static let rows: [Row] = [
        Row(
            """
            resnet(depth, variant = \"b\", classes = 1000, in_channels = 3, width = nil, zero_gamma = false, se = \
            false, activation = \"relu\", groups = 1, width_per_group = 64, init = \"xavier\", seed = nil)
            """,
            doc: """
                A ResNet: depths 18, 34, 50, 101, 152 (ImageNet) or 20, 32, 44, 56, 110 (small images); variants a, \
                b, c, d as in the paper.
                """,
            example: "resnet(20, variant: \"d\", in_channels: 1, classes: 10, zero_gamma: true)", resnet),
        Row(
            "diff(a, b, input = nil)", doc: "What changed from model a to model b: layers, parameters and MACs.",
            example: "diff(resnet(50, variant: \"a\"), resnet(50, variant: \"d\"))"
        ) { a in
            let x = try a.host("a", ModelBox.self).model
            let y = try a.host("b", ModelBox.self).model
            let input = try a.isNil("input") ? defaultInput(x) : try a.shape("input")
            return .string(ModelSummary.diff(try x.summary(input: input), try y.summary(input: input)))
        },
        Row(
            "activations(model, images, every = false, training = false)",
            doc: """
                Output statistics of each residual block (every module with every: true) for a batch: records {layer, \
                kind, shape, mean, std}; in evaluation mode, or with training: true in training mode (batch norm \
                normalizing with the batch's statistics, its running statistics left as they were).
                """,
            example: "print(table(activations(model, batch.images)))", activations),
        Row(
            "predict(model, images)",
            doc: "The model's logits for a tensor of images, in evaluation mode without gradients.",
            example: "predict(model, batch.images).argmax(axis: 1)"
        ) { a in
            let m = try a.host("model", ModelBox.self).model
            m.eval()
            return box(try withNoGrad { try m(try a.tensor("images")) })
        },
    ]

    static let types: [HostType] = [ModelBox.type]

    static func resnet(_ a: Args) throws -> Value {
        var c = ResNetConfig(depth: try a.int("depth", oneOf: ResNetConfig.imagenetDepths + ResNetConfig.smallDepths))
        c.variant = try a.choice("variant", ResNetVariant.self)
        c.classes = try a.int("classes", in: 1...(1 << 20))
        c.inChannels = try a.int("in_channels", in: 1...4096)
        c.width = try a.isNil("width") ? nil : try a.int("width", in: 1...4096)
        c.zeroGamma = try a.bool("zero_gamma")
        c.squeezeExcite = try a.bool("se")
        c.activation = try a.choice("activation", Activation.self)
        c.groups = try a.int("groups", in: 1...1024)
        c.widthPerGroup = try a.int("width_per_group", in: 1...4096)
        c.initializer = try a.choice("init", Initializer.self)
        c.seed = try a.seed()
        return .host(ModelBox(try ResNet(c)))
    }

    static func activations(_ a: Args) throws -> Value {
        let m = try a.host("model", ModelBox.self).model
        let every = try a.bool("every")
        let stats = try m.activations(try a.tensor("images"), inTraining: try a.bool("training")) { every || $0 is ResidualBlock }
        return list(
            try stats.map { s in
                try record([
                    "layer": .string(s.name), "kind": .string(s.kind), "shape": ints(s.shape), "mean": .float(s.mean),
                    "std": .float(s.std),
                ])
            })
    }
}

/// The input shape a summary assumes for a model: 28×28 for small-image ResNets, 224×224 otherwise.
func defaultInput(_ m: Module) -> [Int] {
    if let r = m as? ResNet {
        return r.config.isSmall ? [r.config.inChannels, 28, 28] : [r.config.inChannels, 224, 224]
    }
    return [3, 224, 224]
}

/// A model (any Module): called on a batch it runs the forward pass in its mode.
final class ModelBox: HostObject, TypedHost {
    override var hostType: HostType { ModelBox.type }
    let model: Module
    init(_ model: Module) { self.model = model }

    static let type: HostType = {
        let t = HostType(
            "model",
            doc: """
                A network: model(x) runs it; parameters(), param(name), buffers(), modules(), summary(), train(), \
                eval(), save(), load().
                """)
        t.callable(
            ModelBox.self, "model(x)",
            doc: """
                The forward pass in the model's mode (train() or eval()), recorded for autograd unless inside no_grad.
                """,
            example: "model(batch.images).shape"
        ) { box, a in
            .host(TensorBox(try box.model(try a.tensor("x"))))
        }
        // m.conv1, m.fc.weight: children, parameters and buffers by their local names.
        t.members(ModelBox.self, names: localNames) { o, name in
            if let c = o.model.children.first(where: { $0.0 == name }) { return .host(ModelBox(c.1)) }
            if let p = o.model.ownParameters.first(where: { $0.0 == name }) { return box(p.1) }
            return o.model.ownBuffers.first(where: { $0.0 == name }).map { box($0.1) }
        }
        t.property(ModelBox.self, "parameter_count") { o in .int(o.model.parameterCount) }
        t.property(ModelBox.self, "training") { o in .bool(o.model.training) }
        t.property(ModelBox.self, "zero_gamma_layers") { o in
            list(o.model.zeroGammaLayers.map { .string($0) })
        }
        func m(_ sig: String, _ doc: String, _ example: String, _ body: @escaping (Module, Args) throws -> Value) {
            t.method(ModelBox.self, sig, doc: doc, example: example) { box, a in try body(box.model, a) }
        }
        m(
            "parameters()",
            "Every parameter by its dotted name (PyTorch's), sharing storage with the model (.grad after backward).",
            "model.parameters()[\"fc.bias\"].shape"
        ) { mod, _ in try tensorMap(mod.namedParameters()) }
        m("param(name)", "One parameter by its dotted name.", "model.param(\"layer1.0.bn2.weight\")") { mod, a in
            try named(mod.namedParameters(), try a.string("name"), "parameter", of: mod)
        }
        m(
            "buffers()", "Every buffer (batch norm's running statistics) by dotted name.",
            "model.buffers()[\"bn1.running_mean\"]"
        ) { mod, _ in
            try tensorMap(mod.namedBuffers())
        }
        m(
            "modules()", "Every submodule by dotted name (\"\" is the model itself); each can be called and inspected.",
            "model.modules()[\"layer1.0\"]"
        ) { mod, _ in
            let map = MapRef()
            for (name, sub) in mod.namedModules() { try map.set(.string(name), .host(ModelBox(sub))) }
            return .map(map)
        }
        m("module(name)", "One submodule by its dotted name.", "model.module(\"layer1.0.conv1\")") { mod, a in
            let name = try a.string("name")
            guard let sub = mod.namedModules().first(where: { $0.0 == name })?.1 else {
                throw a.fail("name", "names no submodule\(didYouMean(name, mod.namedModules().map(\.0)))")
            }
            return .host(ModelBox(sub))
        }
        m(
            "summary(input = nil)", "The layers as a table: output shapes, parameters and MACs, with totals.",
            "print(model.summary())"
        ) { mod, a in
            .string(try mod.summary(input: try a.isNil("input") ? defaultInput(mod) : try a.shape("input")).table())
        }
        m("train()", "Training mode: batch statistics, dropout on.", "model.train()") { mod, _ in
            mod.train()
            return .nil_
        }
        m("eval()", "Evaluation mode: running statistics.", "model.eval()") { mod, _ in
            mod.eval()
            return .nil_
        }
        m("zero_grad()", "Clears every parameter's gradient.", "model.zero_grad()") { mod, _ in
            mod.zeroGrad()
            return .nil_
        }
        m(
            "save(path)", "Saves the weights as safetensors with PyTorch names.",
            "model.save(\"model.safetensors\")"
        ) { mod, a in
            try mod.save(to: try a.string("path"))
            return .nil_
        }
        m(
            "load(path, strict = true)", "Loads safetensors weights; reports missing and unexpected names.",
            "model.load(\"model.safetensors\")"
        ) { mod, a in
            let r = try mod.load(from: try a.string("path"), strict: try a.bool("strict"))
            return .string(
                "loaded \(r.loaded.count) tensors, \(r.missing.count) missing, \(r.unexpected.count) unexpected")
        }
        m(
            "state_dict()",
            "A copy of every parameter and buffer by dotted name: what load_state_dict puts back (a learning-rate range test trains and then restores).",
            "let saved = model.state_dict()"
        ) { mod, _ in try tensorMap(mod.stateDict().map { ($0.0, $0.1.copy()) }) }
        m(
            "load_state_dict(state, strict = true)",
            "Copies tensors by dotted name into the model's parameters and buffers (shapes must match); strict: every name on both sides.",
            "model.load_state_dict(model.state_dict())"
        ) { mod, a in
            guard case .map(let m) = try a.value("state") else { throw a.fail("state", "must be a map of names to tensors, as state_dict() gives") }
            var byName: [String: Tensor] = [:]
            for (k, v) in zip(m.keys, m.values) {
                guard case .string(let name) = k, case .host(let t as TensorBox) = v else {
                    throw a.fail("state", "must map names to tensors, got \(k.repr): \(v.typeName)")
                }
                byName[name] = t.tensor
            }
            let r = try mod.load(byName, source: "load_state_dict", strict: try a.bool("strict"))
            return .string("loaded \(r.loaded.count) tensors, \(r.missing.count) missing, \(r.unexpected.count) unexpected")
        }
        m("named_parameters()", "Names and shapes of the parameters.", "model.named_parameters()[0]") { mod, _ in
            list(mod.namedParameters().map { list([.string($0.0), ints($0.1.shape)]) })
        }
        t.describe(ModelBox.self) { o in "\(o.model.tree())\n\(grouped(o.model.parameterCount)) parameters" }
        return t
    }()

    /// The names `m.name` reaches: children, own parameters and own buffers.
    static func localNames(_ o: ModelBox) -> [String] {
        o.model.children.map(\.0) + o.model.ownParameters.map(\.0) + o.model.ownBuffers.map(\.0)
    }

    static func tensorMap(_ pairs: [(String, Tensor)]) throws -> Value {
        let map = MapRef()
        for (name, t) in pairs { try map.set(.string(name), box(t)) }
        return .map(map)
    }

    static func named(_ pairs: [(String, Tensor)], _ name: String, _ what: String, of m: Module) throws -> Value {
        guard let t = pairs.first(where: { $0.0 == name })?.1 else {
            throw ScriptError("\(m.typeName) has no \(what) '\(name)'\(didYouMean(name, pairs.map(\.0)))")
        }
        return box(t)
    }
}
