/// An error from a tensor operation. The message names the operation and the shapes or sizes at fault,
/// e.g. `add: cannot broadcast shapes [2, 3] and [4, 3]`.
public struct TensorError: Error, CustomStringConvertible, Equatable {
    public let op: String
    public let message: String

    public init(_ op: String, _ message: String) {
        self.op = op
        self.message = message
    }

    public var description: String { "\(op): \(message)" }
}

/// `[2, 3]`, the way shapes appear in every message.
@inline(__always) func fmt(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

/// Checks an axis against a rank and makes a negative axis count from the end.
func normalizeAxis(_ axis: Int, rank: Int, op: String) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < rank else {
        throw TensorError(op, "axis \(axis) is out of range for a tensor of rank \(rank)")
    }
    return a
}
