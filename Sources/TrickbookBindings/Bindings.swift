import Foundation
import TrickbookScript
import TrickbookTensor

/// The one place where the language meets the Swift objects. Each library is a file: a list of
/// rows naming Swift functions, and the host types it brings.
public enum Bindings {
    public static let libraries: [Library.Type] = [
        TensorLibrary.self, ModelLibrary.self, LayerLibrary.self, DataLibrary.self, TrainingLibrary.self,
        DisplayLibrary.self, FileLibrary.self, MachineLibrary.self, ParallelLibrary.self,
    ]

    /// Registers every library on a session whose random draws follow `seed`.
    public static func register(into i: Interpreter, seed: UInt64 = 0) {
        i.hostState = RunState(seed: seed)
        // Long engine operations stop for Ctrl-C in the session whose script runs on their thread.
        Interruption.install { InterruptFlag.current?.isSet ?? false }
        i.hostBytes = { Memory.tensorBytes }
        for library in libraries { i.load(library) }
        ParallelLibrary.define(in: i)
    }
}

/// What the bindings keep per session: the run's generator. Every random draw that a call does
/// not seed itself (initial weights, data order, augmentation, mixing, dropout) comes from it, so
/// one seed fixes a run.
final class RunState {
    var generator: Generator
    init(seed: UInt64) { generator = Generator(seed: seed) }
}

extension Args {
    /// The session's run state.
    var run: RunState {
        if let r = interpreter.hostState as? RunState { return r }
        let r = RunState(seed: 0)
        interpreter.hostState = r
        return r
    }

    /// The seed argument `name` when given, else the next draw of the run's generator.
    func seed(_ name: String = "seed") throws -> UInt64 {
        try isNil(name) ? run.generator.next() : UInt64(truncatingIfNeeded: try int(name))
    }

    /// A generator: the `generator` argument when given, else the run's.
    func generator(_ name: String = "generator") throws -> Generator {
        try hostOrNil(name, GeneratorBox.self)?.generator ?? run.generator
    }

    /// A list of sizes.
    func shape(_ name: String) throws -> [Int] {
        try list(name).enumerated().map { j, v in
            guard case .int(let n) = v, n >= 0 else {
                throw fail(name, "must be a list of sizes, item \(j) is \(v.repr)")
            }
            return n
        }
    }

    /// A list of ints.
    func ints(_ name: String) throws -> [Int] {
        try list(name).enumerated().map { j, v in
            guard case .int(let n) = v else { throw fail(name, "must be a list of ints, item \(j) is \(v.repr)") }
            return n
        }
    }

    /// A list of numbers as Floats.
    func floats(_ name: String) throws -> [Float] {
        try list(name).enumerated().map { j, v in
            guard let d = v.number else { throw fail(name, "must be a list of numbers, item \(j) is \(v.repr)") }
            return Float(d)
        }
    }

    func tensor(_ name: String) throws -> Tensor { try host(name, TensorBox.self).tensor }
    func tensorOrNil(_ name: String) throws -> Tensor? { try hostOrNil(name, TensorBox.self)?.tensor }

    /// A tensor, or a number or nested list made into one (what PyTorch's functions accept).
    func tensorLike(_ name: String) throws -> Tensor {
        let v = try value(name)
        if let t = try TensorBox.operand(v) { return t }
        if case .list = v { return try TensorLibrary.nested(v) }
        throw fail(name, "must be a tensor or a number, got \(v.typeName)")
    }
}

/// A Float as a script number, by its shortest decimal form (0.05, not 0.05000000074505806).
func fv(_ f: Float) -> Value { .float(Double(f.description) ?? Double(f)) }

func number(_ v: Value, _ what: String) throws -> Float {
    guard let d = v.number else { throw ScriptError("\(what) must be a number, got \(v.typeName)") }
    return Float(d)
}

func ints(_ xs: [Int]) -> Value { .list(ListRef(xs.map { .int($0) })) }
func list(_ xs: [Value]) -> Value { .list(ListRef(xs)) }

/// A record with its fields in the given order (tables show them so).
func record(_ fields: KeyValuePairs<String, Value>) throws -> Value {
    let m = MapRef()
    for (k, v) in fields { try m.set(.string(k), v) }
    return .map(m)
}

/// A record from pairs built at run time, in order.
func record(_ fields: [(String, Value)]) throws -> Value {
    let m = MapRef()
    for (k, v) in fields { try m.set(.string(k), v) }
    return .map(m)
}
