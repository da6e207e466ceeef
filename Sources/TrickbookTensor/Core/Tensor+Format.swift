import Foundation

// Printing as PyTorch does: nested rows, one number format for the whole tensor, and only the
// first and last `edgeItems` of each axis once the tensor has more than `threshold` elements.

extension Tensor {
    /// `tensor([[ 1.0000, -2.0000], [ 3.0000,  4.0000]], shape=[2, 2], dtype=float32)`, over
    /// several lines for several rows.
    public func formatted(threshold: Int = 1000, edgeItems: Int = 3) -> String {
        let summarise = count > threshold
        let style = NumberStyle(scalars: sampled(summarise: summarise, edgeItems: edgeItems))
        let prefix = "tensor("
        var body: String
        if rank == 0 {
            body = style.text(item).trimmingCharacters(in: .whitespaces)
        } else {
            body = rows(axis: 0, offset: 0, indent: prefix.count, style: style, summarise: summarise, edgeItems: edgeItems)
        }
        var extras = ["shape=\(fmt(shape))", "dtype=float32"]
        if requiresGrad { extras.append(node == nil ? "requires_grad=true" : "grad_fn=\(node?.op ?? "")") }
        body += ", " + extras.joined(separator: ", ")
        return prefix + body + ")"
    }

    /// The elements that will be shown (to choose one number format for all of them).
    private func sampled(summarise: Bool, edgeItems: Int) -> [Float] {
        guard summarise else { return scalars }
        let n = count, p = storage.pointer
        return (0..<Swift.min(n, edgeItems * 64)).map { p[$0] } + (Swift.max(0, n - edgeItems * 64)..<n).map { p[$0] }
    }

    private func rows(axis: Int, offset: Int, indent: Int, style: NumberStyle, summarise: Bool, edgeItems: Int) -> String {
        let n = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *)
        let shown: [Int?] = summarise && n > 2 * edgeItems
            ? Array(0..<edgeItems) + [nil] + Array((n - edgeItems)..<n) : Array(0..<n)
        if axis == rank - 1 {
            let p = storage.pointer
            return "[" + shown.map { $0.map { style.text(p[offset + $0]) } ?? "..." }.joined(separator: ", ") + "]"
        }
        let gap = "," + String(repeating: "\n", count: rank - axis - 1) + String(repeating: " ", count: indent + 1)
        let parts = shown.map { i in
            i.map { rows(axis: axis + 1, offset: offset + $0 * inner, indent: indent + 1, style: style, summarise: summarise, edgeItems: edgeItems) } ?? "..."
        }
        return "[" + parts.joined(separator: gap) + "]"
    }
}

/// One format for every element: whole numbers as `1.`, else four decimals, else scientific when
/// the magnitudes span too much; right-aligned to a common width.
struct NumberStyle {
    enum Kind { case whole, fixed, scientific }
    let kind: Kind
    let width: Int

    init(scalars: [Float]) {
        let finite = scalars.filter(\.isFinite)
        let magnitudes = finite.map { Swift.abs($0) }.filter { $0 > 0 }
        if finite.allSatisfy({ $0 == $0.rounded() }) && (magnitudes.max() ?? 0) < 1e8 {
            kind = .whole
        } else if let lo = magnitudes.min(), let hi = magnitudes.max(), hi >= 1e8 || lo < 1e-4 || hi / lo > 1e5 {
            kind = .scientific
        } else {
            kind = .fixed
        }
        var w = 0
        for x in scalars { w = Swift.max(w, NumberStyle.raw(x, kind).count) }
        width = w
    }

    static func raw(_ x: Float, _ kind: Kind) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        switch kind {
        case .whole: return String(format: "%.0f.", Double(x))
        case .fixed: return String(format: "%.4f", Double(x))
        case .scientific: return String(format: "%.4e", Double(x))
        }
    }

    func text(_ x: Float) -> String {
        let s = NumberStyle.raw(x, kind)
        return String(repeating: " ", count: Swift.max(0, width - s.count)) + s
    }
}
