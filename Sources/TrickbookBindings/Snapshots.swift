import Foundation
import TrickbookModels
import TrickbookScript
import TrickbookTensor
import TrickbookTraining

/// What a notebook's "undo" puts back: every model's parameters and buffers, every optimizer's
/// state (momentum, averaged weights, step, rate, loss scale), the random generators and the
/// loaders' epochs, as they were when the snapshot was taken. Variables keep whatever they name now.
public final class SessionSnapshot {
    /// The memory it holds: the copies, and the momentum buffers it keeps alive.
    public let bytes: Int
    private let actions: [() throws -> Void]

    init(bytes: Int, actions: [() throws -> Void]) {
        self.bytes = bytes
        self.actions = actions
    }

    public func restore() throws {
        for a in actions { try a() }
    }
}

extension Bindings {
    /// A snapshot of the session's models, optimizers and generators: those its variables name,
    /// directly or inside a list or map (one level, the first 10,000 items). Nil when it would
    /// hold more than `limit` bytes (nothing is copied then). It holds its objects weakly: an
    /// object the session let go of is not kept alive for undo.
    public static func snapshot(of interp: Interpreter, limit: Int) -> SessionSnapshot? {
        var models: [ObjectIdentifier: Module] = [:], trainers: [ObjectIdentifier: Trainer] = [:]
        var generators: [ObjectIdentifier: Generator] = [:], loaders: [ObjectIdentifier: LoaderBox] = [:]
        func note(_ v: Value) {
            guard case .host(let o) = v else { return }
            switch o {
            case let m as ModelBox: models[ObjectIdentifier(m.model)] = m.model
            case let b as OptimizerBox:
                trainers[ObjectIdentifier(b.trainer)] = b.trainer
                models[ObjectIdentifier(b.trainer.model)] = b.trainer.model
            case let g as GeneratorBox: generators[ObjectIdentifier(g.generator)] = g.generator
            case let l as LoaderBox: loaders[ObjectIdentifier(l)] = l
            default: break
            }
        }
        for (_, v) in interp.userGlobals {
            note(v)
            switch v {
            case .list(let l): l.items.prefix(10_000).forEach(note)
            case .map(let m): m.values.prefix(10_000).forEach(note)
            default: break
            }
        }
        if let run = interp.hostState as? RunState { generators[ObjectIdentifier(run.generator)] = run.generator }

        // The size first: a snapshot over the limit is never made.
        let states = models.values.map { ($0, $0.stateDict()) }
        var bytes = states.reduce(0) { $0 + $1.1.reduce(0) { $0 + $1.1.count * 4 } }
        bytes += trainers.values.reduce(0) { $0 + $1.snapshotBytes }
        guard bytes <= limit else { return nil }

        var actions: [() throws -> Void] = []
        for (model, state) in states {
            // Parameters and BN's running statistics are written in place: copied.
            let byName = Dictionary(state.map { ($0.0, $0.1.copy()) }, uniquingKeysWith: { a, _ in a })
            actions.append { [weak model] in try model?.load(byName, source: "the undo snapshot", strict: false) }
        }
        for trainer in trainers.values {
            let s = trainer.snapshot()
            actions.append { [weak trainer] in try trainer?.restore(s) }
        }
        for g in generators.values {
            let state = g.state
            actions.append { [weak g] in try g?.restore(state) }
        }
        // A loader's epoch picks its shuffle and augmentation: put back too.
        for l in loaders.values {
            let position = l.position
            actions.append { [weak l] in l?.restore(position) }
        }
        return SessionSnapshot(bytes: bytes, actions: actions)
    }
}
