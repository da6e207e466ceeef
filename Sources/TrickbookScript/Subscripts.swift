// Subscripts over several axes for host objects (tensors): x[:, 0, 2:5], x[..., -1], x[nil],
// and assignment into them. Lists, strings and maps take one index or one slice.

/// One item of a subscript, as the host sees it: an index value (nil for a new axis), a slice
/// (each part nil when omitted), or `...`.
public enum Subscript {
    case index(Value)
    case slice(Value, Value, Value)
    case ellipsis
}

/// One item of a subscript as written.
enum SubscriptItem {
    case index(Expr)
    case slice(Expr?, Expr?, Expr?)
    case ellipsis

    func eval(_ f: Frame) throws -> Subscript {
        switch self {
        case .index(let e): return .index(try e.eval(f))
        case .slice(let a, let b, let c): return .slice(try a?.eval(f) ?? .nil_, try b?.eval(f) ?? .nil_, try c?.eval(f) ?? .nil_)
        case .ellipsis: return .ellipsis
        }
    }
}

/// Reads `o[items]` through the host type's subscript hook.
func subscriptValue(_ o: Value, _ items: [Subscript]) throws -> Value {
    guard case .host(let h) = o, let read = h.hostType.getSubscript else {
        throw ScriptError("\(o.typeName) takes one index or one slice, not \(items.count) items")
    }
    return try read(h, items)
}

/// `o[items] = v` (after `op` with the old value, when given) through the host type's hook.
func assignSubscript(_ o: Value, _ items: [Subscript], _ op: BinOp?, _ value: Value) throws {
    guard case .host(let h) = o, let write = h.hostType.setSubscript else {
        throw ScriptError("\(o.typeName) does not support assignment into a slice")
    }
    var v = value
    if let op { v = try binary(op, try subscriptValue(o, items), v) }
    try write(h, items, v)
}

/// The subscript items written as `items`, their values in registers from `r` on in order (an
/// index one, a slice three, `...` none).
func subscripts(_ items: [SubscriptItem], from r: UnsafeMutablePointer<Value>) -> [Subscript] {
    var k = 0
    return items.map { item in
        switch item {
        case .index:
            defer { k += 1 }
            return .index(r[k])
        case .slice:
            defer { k += 3 }
            return .slice(r[k], r[k + 1], r[k + 2])
        case .ellipsis: return .ellipsis
        }
    }
}

final class MultiIndexExpr: Expr {
    let object: Expr, items: [SubscriptItem]
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ object: Expr, _ items: [SubscriptItem]) {
        self.object = object; self.items = items
        super.init(ctx, file, pos)
    }
    override func eval(_ f: Frame) throws -> Value {
        let o = try object.eval(f)
        let subs = try items.map { try $0.eval(f) }
        do { return try subscriptValue(o, subs) } catch { throw locate(error) }
    }
}

/// `o[a:b] = e`, `o[i, j:k] = e` (and with a compound operator) on host objects.
final class SubscriptAssignStmt: Stmt {
    let object: Expr, items: [SubscriptItem], op: BinOp?, value: Expr
    init(_ ctx: Interpreter, _ file: SourceFile, _ pos: SourcePos, _ object: Expr, _ items: [SubscriptItem], _ op: BinOp?, _ value: Expr) {
        self.object = object; self.items = items; self.op = op; self.value = value
        super.init(ctx, file, pos)
    }
    override func exec(_ f: Frame) throws -> Flow {
        let o = try object.eval(f)
        let subs = try items.map { try $0.eval(f) }
        let v = try value.eval(f)
        do { try assignSubscript(o, subs, op, v) } catch { throw locate(error) }
        return .normal
    }
}
