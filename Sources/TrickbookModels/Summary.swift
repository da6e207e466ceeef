import Foundation
import TrickbookTensor

/// One row of a model summary: a leaf layer with its output shape, parameters and
/// multiply-accumulates (conv and linear layers; per image).
public struct LayerRow: Equatable, Sendable {
    public let name: String
    public let type: String
    public let details: String
    public let outputShape: [Int]
    public let parameters: Int
    public let macs: Int
}

/// The layers of a model as one forward pass at a given input size sees them.
public struct ModelSummary: Sendable {
    public let model: String
    public let inputShape: [Int]
    public let rows: [LayerRow]
    public var parameters: Int
    public var macs: Int { rows.reduce(0) { $0 + $1.macs } }

    /// A text table with totals.
    public func table() -> String {
        var out = "\(model), input \(inputShape)\n"
        out += pad("layer", 34) + pad("type", 14) + pad("output", 18) + lpad("params", 12) + lpad("MACs", 16) + "\n"
        for r in rows {
            out += pad(r.name, 34) + pad(r.type, 14) + pad(shape(r.outputShape), 18) + lpad(grouped(r.parameters), 12) + lpad(grouped(r.macs), 16) + "\n"
        }
        out += pad("total", 66) + lpad(grouped(parameters), 12) + lpad(grouped(macs), 16)
        return out
    }

    /// What changed from `a` to `b`: layers added, removed or different, and the totals' deltas.
    public static func diff(_ a: ModelSummary, _ b: ModelSummary) -> String {
        var out = "\(a.model) → \(b.model)\n"
        let byName = Dictionary(a.rows.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        let bNames = Set(b.rows.map(\.name))
        for r in a.rows where !bNames.contains(r.name) {
            out += "  - \(r.name)  \(r.type) \(r.details)  \(shape(r.outputShape))  params \(grouped(r.parameters))  MACs \(grouped(r.macs))\n"
        }
        for r in b.rows {
            if let old = byName[r.name] {
                if old != r {
                    out += "  ~ \(r.name)  \(old.type) \(old.details) \(shape(old.outputShape)) → \(r.type) \(r.details) \(shape(r.outputShape))"
                    out += "  params \(signed(r.parameters - old.parameters))  MACs \(signed(r.macs - old.macs))\n"
                }
            } else {
                out += "  + \(r.name)  \(r.type) \(r.details)  \(shape(r.outputShape))  params \(grouped(r.parameters))  MACs \(grouped(r.macs))\n"
            }
        }
        out += "  parameters \(grouped(a.parameters)) → \(grouped(b.parameters)) (\(signed(b.parameters - a.parameters)))\n"
        out += "  MACs \(grouped(a.macs)) → \(grouped(b.macs)) (\(signed(b.macs - a.macs)))"
        return out
    }
}

public func grouped(_ n: Int) -> String {
    let s = String(n.magnitude)
    var out = ""
    for (k, ch) in s.reversed().enumerated() {
        if k > 0 && k % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + String(out.reversed())
}

private func signed(_ n: Int) -> String { (n >= 0 ? "+" : "") + grouped(n) }
private func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
private func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }

extension Module {
    /// Runs one image of `input` shape ([C, H, W]) through the model in evaluation mode, without
    /// gradients, and lists its leaf layers.
    public func summary(input: [Int]) throws -> ModelSummary {
        let recorder = Recorder()
        let wasTraining = training
        eval()
        defer { train(wasTraining) }
        _ = try Recorder.$current.withValue(recorder) {
            try withNoGrad { try self(try Tensor.zeros([1] + input)) }
        }
        var names: [ObjectIdentifier: String] = [:]
        for (n, m) in namedModules() { names[ObjectIdentifier(m)] = n }
        var rows: [LayerRow] = [], seen: [ObjectIdentifier: Int] = [:]
        for e in recorder.entries {
            let m = e.module
            let macs: Int
            switch m {
            case let c as Conv2d: macs = c.macs(outputShape: e.outputShape)
            case let l as Linear: macs = l.inFeatures * l.outFeatures
            default: macs = 0
            }
            let row = LayerRow(name: names[ObjectIdentifier(m)] ?? "?", type: m.typeName, details: m.details,
                               outputShape: Array(e.outputShape.dropFirst()), parameters: m.ownParameters.reduce(0) { $0 + $1.1.count }, macs: macs)
            // A module used twice in one pass (an activation) is listed once.
            if let i = seen[ObjectIdentifier(m)] { rows[i] = row } else { seen[ObjectIdentifier(m)] = rows.count; rows.append(row) }
        }
        return ModelSummary(model: typeName, inputShape: input, rows: rows, parameters: parameterCount)
    }
}
