/// A dense, contiguous, row-major Float32 tensor (NCHW for images) that can record the operations
/// applied to it for reverse-mode differentiation.
///
/// Tensors are reference types, as in PyTorch: an optimizer updates a parameter in place and every
/// holder sees it. Operations return new tensors; `reshaped` shares storage.
public final class Tensor {
    public let shape: [Int]
    /// The elements in `layout`. Code that reads or writes elements by position uses `storage`,
    /// which is always plain (row-major); only the ops that know a blocked layout use `held`.
    private var held: Storage
    /// How `held` orders the elements: plain, or blocked as oneDNN left a convolution's output
    /// (kept so that the next convolution, batch norm, ReLU or sum needs no reorder).
    private(set) var layout: Layout = .plain

    /// The elements in row-major order. A blocked tensor is reordered here once, at its first use
    /// by an op that does not know its layout: users and most ops never see a layout.
    var storage: Storage {
        if layout != .plain { makePlain() }
        return held
    }

    /// The elements as they are held, with their layout (for the ops that know blocked layouts).
    var heldStorage: Storage { held }
    /// Whether gradients flow to this tensor. Set it on leaves (parameters, inputs to check).
    public var requiresGrad: Bool
    /// The accumulated gradient of a leaf after `backward()`.
    public var grad: Tensor?
    /// Called by `backward()`, in the order added, once this leaf's gradient of the pass has
    /// accumulated into `grad` (PyTorch's post-accumulate-grad hooks): data-parallel training
    /// starts summing a bucket of gradients across processes while the rest of the pass still
    /// runs. Each hook has an owner, so that two optimizers of one model keep their own.
    private(set) var gradientHooks: [(owner: ObjectIdentifier, hook: () throws -> Void)] = []
    /// How this tensor was computed, when it was computed from tensors that require gradients.
    var node: Node?
    /// An optional name used in messages ("conv1.weight").
    public var name: String?

    /// Wraps existing storage; `shape` must have `storage.count` elements.
    init(shape: [Int], storage: Storage) {
        self.shape = shape
        held = storage
        count = storage.count
        requiresGrad = false
    }

    /// A tensor whose storage is in `layout` (which must suit `shape`: see `Layout.suits`), holding
    /// `layout.storageFloats(count)` Floats for the shape's `count` elements.
    init(shape: [Int], storage: Storage, layout: Layout) {
        self.shape = shape
        held = storage
        self.layout = layout
        count = layout == .blocked16BF16 ? shape.reduce(1, *) : storage.count
        requiresGrad = false
    }

    /// A new uninitialised tensor held in `layout`; `count` has been checked by `Memory.elementCount`.
    convenience init(uninitialized shape: [Int], count: Int, layout: Layout) {
        self.init(shape: shape, storage: Storage(uninitialized: layout.storageFloats(count)), layout: layout)
    }

    /// Reorders the elements into row-major order, in a new buffer.
    private func makePlain() {
        let plain = Storage(uninitialized: count)
        layout.reorder(held.pointer, toPlain: plain.pointer, shape: shape)
        held = plain
        layout = .plain
    }

    /// A new uninitialised tensor (the op fills every element).
    convenience init(uninitialized shape: [Int], op: String) throws {
        let n = try Memory.elementCount(shape, op: op)
        self.init(shape: shape, storage: Storage(uninitialized: n))
    }

    /// A tensor of `shape` holding `values` in row-major order.
    public convenience init(_ values: [Float], shape: [Int]) throws {
        let n = try Memory.elementCount(shape, op: "tensor")
        guard n == values.count else {
            throw TensorError("tensor", "\(values.count) values do not fill shape \(fmt(shape)) (\(n) elements)")
        }
        self.init(shape: shape, storage: Storage(uninitialized: n))
        values.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { storage.pointer.update(from: base, count: n) }
        }
    }

    /// A 0-d tensor.
    public convenience init(scalar: Float) {
        let s = Storage(uninitialized: 1)
        s.pointer[0] = scalar
        self.init(shape: [], storage: s)
    }

    /// The most axes a tensor may have (as many as PyTorch's): more is an error, never a deep
    /// recursion in printing or indexing.
    public static let maxRank = 64

    /// The number of elements (the Floats of storage, except in a BF16 layout).
    public let count: Int
    public var rank: Int { shape.count }
    /// The first element as a number (for scalars and one-element tensors).
    public var item: Float { storage.pointer[0] }
    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// Read-only access to the elements.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: count))
    }

    /// In-place access to the elements, for optimizers and running statistics. Not recorded for autodiff.
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// The element at a multi-index, checked.
    public func at(_ index: [Int]) throws -> Float {
        guard index.count == rank else {
            throw TensorError("at", "index of \(index.count) numbers for a tensor of shape \(fmt(shape))")
        }
        var offset = 0
        for (i, (x, d)) in zip(index, shape).enumerated() {
            let v = x < 0 ? x + d : x
            guard v >= 0 && v < d else {
                throw TensorError("at", "index \(x) is out of range for axis \(i) of size \(d) in shape \(fmt(shape))")
            }
            offset = offset * d + v
        }
        return storage.pointer[offset]
    }

    /// A copy with its own storage, detached from the graph.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape, storage: Storage(uninitialized: count))
        t.storage.pointer.update(from: storage.pointer, count: count)
        return t
    }

    /// The same values, cut from the graph: gradients do not flow through it. Shares storage.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// Adds a hook `backward()` calls after this leaf's gradient has accumulated (see
    /// `gradientHooks`), kept until `removeGradientHooks(owner:)` with the same owner.
    public func addGradientHook(owner: AnyObject, _ hook: @escaping () throws -> Void) {
        gradientHooks.append((ObjectIdentifier(owner), hook))
    }

    /// Removes the hooks `owner` added.
    public func removeGradientHooks(owner: AnyObject) {
        let id = ObjectIdentifier(owner)
        gradientHooks.removeAll { $0.owner == id }
    }

    /// The label used in messages: the name if there is one, else the shape.
    var label: String { name.map { "'\($0)' \(fmt(shape))" } ?? fmt(shape) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let n = count
        let shown = (0..<Swift.min(n, 8)).map { i in shortFloat(storage.pointer[i]) }
        return "Tensor(shape: \(fmt(shape)), [\(shown.joined(separator: ", "))\(n > 8 ? ", …" : "")])"
    }
}

func shortFloat(_ x: Float) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    if x == x.rounded() && abs(x) < 1e7 { return String(Int(x)) }
    return String(format: "%.4g", Double(x))
}

import Foundation
