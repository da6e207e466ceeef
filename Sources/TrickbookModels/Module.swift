import TrickbookTensor

/// A layer or a network: parameters and buffers with dotted names, children, train and eval modes.
///
/// Names follow PyTorch's state_dict (`layer1.0.conv1.weight`), so that weights move between
/// trickbook and PyTorch with the same keys.
open class Module {
    /// Trainable tensors of this module itself, by local name.
    public internal(set) var ownParameters: [(String, Tensor)] = []
    /// Non-trainable state (BN running statistics), by local name.
    public internal(set) var ownBuffers: [(String, Tensor)] = []
    /// Submodules in order, by local name ("0", "conv1", "layer2").
    public internal(set) var children: [(String, Module)] = []
    public private(set) var training = true
    /// Levels of modules from this one down to its deepest leaf (1 for a leaf).
    public private(set) var height = 1
    /// How deep modules may nest: running, printing and freeing a model recurse on its height.
    public static let maxHeight = 200

    public init() {}

    /// The layer's kind for summaries ("Conv2d").
    open var typeName: String { String(describing: type(of: self)) }
    /// A short description of the layer's settings for summaries ("3→16, 3x3, stride 1").
    open var details: String { "" }

    open func forward(_ x: Tensor) throws -> Tensor { x }

    /// Set while training in low precision: every leaf layer's output (and, on the way back, its
    /// gradient) is rounded to this format.
    @TaskLocal public static var activationFormat: LowPrecisionFormat?

    /// Whether something looks at every layer's output now (a summary, an activation probe, or
    /// rounding each output to a low-precision format): then layers run one by one, never fused.
    static var seesEveryLayer: Bool {
        !Module.fuses || Module.activationFormat != nil || Recorder.current != nil || ActivationProbe.current != nil
    }

    /// Off to run every layer on its own (tests compare the fused passes with the layers').
    @TaskLocal public static var fuses = true

    /// Runs the module, and records it when a summary is being taken.
    public final func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Interruption.check("the forward pass of \(typeName)")
        var y = try forward(x)
        if children.isEmpty {
            if let format = Module.activationFormat { y = y.rounded(to: format) }
            if let recorder = Recorder.current { recorder.record(self, x, y) }
        }
        if let probe = ActivationProbe.current { probe.record(self, y) }
        return y
    }

    public final func param(_ name: String, _ t: Tensor) -> Tensor {
        t.requiresGrad = true
        ownParameters.append((name, t))
        return t
    }

    public final func buffer(_ name: String, _ t: Tensor) -> Tensor {
        ownBuffers.append((name, t))
        return t
    }

    @discardableResult
    public final func child<M: Module>(_ name: String, _ m: M) -> M {
        children.append((name, m))
        height = Swift.max(height, m.height + 1)
        return m
    }

    // The walks below are iterative and visit each module and tensor once: a model nested deep,
    // or one whose modules are shared (sequential([block, block])), is walked in linear time and
    // without recursion, and a shared tensor is listed (and updated by an optimizer) once, as in
    // PyTorch.

    /// Every module once with its dotted name ("" for this one), depth first in declaration order;
    /// a module shared by two parents is listed under its first name.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = []
        var seen = Set<ObjectIdentifier>()
        var stack: [(String, Module)] = [(prefix, self)]
        while let (name, m) = stack.popLast() {
            guard seen.insert(ObjectIdentifier(m)).inserted else { continue }
            out.append((name, m))
            for (c, child) in m.children.reversed() { stack.append((name.isEmpty ? c : name + "." + c, child)) }
        }
        return out
    }

    /// Each module's own tensors of one kind (parameters, buffers, or both) with their dotted
    /// names, each tensor once.
    private func namedTensors(prefix: String, _ own: (Module) -> [(String, Tensor)]) -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        var seen = Set<ObjectIdentifier>()
        for (name, m) in namedModules() {
            for (p, t) in own(m) where seen.insert(ObjectIdentifier(t)).inserted {
                out.append((prefix + (name.isEmpty ? p : name + "." + p), t))
            }
        }
        return out
    }

    /// Every parameter with its dotted name, depth first in declaration order.
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] { namedTensors(prefix: prefix) { $0.ownParameters } }

    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] { namedTensors(prefix: prefix) { $0.ownBuffers } }

    /// Parameters and buffers together: what a checkpoint holds, in PyTorch's order (each
    /// module's own parameters, then its buffers, then its children).
    public func stateDict() -> [(String, Tensor)] { namedTensors(prefix: "") { $0.ownParameters + $0.ownBuffers } }

    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.1.count } }

    /// Training mode: batch statistics in BN, dropout on.
    public func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.training = on }
    }

    public func eval() { train(false) }

    public func zeroGrad() { for (_, p) in namedParameters() { p.zeroGrad() } }
}

/// Collects what each leaf module did during one forward pass, for summaries.
final class Recorder {
    struct Entry {
        let module: Module
        let inputShape: [Int]
        let outputShape: [Int]
    }
    @TaskLocal static var current: Recorder?
    var entries: [Entry] = []
    func record(_ m: Module, _ x: Tensor, _ y: Tensor) { entries.append(Entry(module: m, inputShape: x.shape, outputShape: y.shape)) }
}

extension Module {
    /// The module tree as PyTorch prints it, one line per module, children indented under their
    /// parent: `(conv1): Conv2d(1→16, 3x3)`. After `maxLines` lines the rest is counted, not shown.
    /// Iterative, so that however deep a model is nested, printing it cannot exhaust the stack.
    public func tree(maxLines: Int = 40) -> String {
        var lines: [String] = []
        var shown = 0
        // (module, its name in the parent, depth, whether this entry closes the module)
        var stack: [(Module, String?, Int, Bool)] = [(self, nil, 0, false)]
        while let (m, name, depth, closing) = stack.popLast() {
            let indent = String(repeating: "  ", count: depth)
            if closing {
                if lines.count < maxLines { lines.append(indent + ")") }
                continue
            }
            let label = (name.map { "(\($0)): " } ?? "") + m.typeName
            guard lines.count < maxLines else { continue }
            shown += 1
            if m.children.isEmpty {
                lines.append(indent + label + (m.details.isEmpty ? "" : "(\(m.details))"))
            } else {
                lines.append(indent + label + "(")
                stack.append((m, nil, depth, true))
                for (childName, child) in m.children.reversed() { stack.append((child, childName, depth + 1, false)) }
            }
        }
        let total = namedModules().count  // each module once, however often it is shared
        if total > shown { lines.append("… \(total - shown) more modules (summary() lists every layer)") }
        return lines.joined(separator: "\n")
    }
}
