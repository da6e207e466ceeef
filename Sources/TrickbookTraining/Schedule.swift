import Foundation

/// A learning rate per iteration (batch), previewable before training.
public protocol Schedule {
    /// The learning rate for iteration t (0-based). Throws only for a schedule written in the
    /// language whose function fails or returns something that is not a rate.
    func lr(at t: Int) throws -> Float
}

extension Schedule {
    /// The rates of the first `steps` iterations, for plots and inspection.
    public func values(_ steps: Int) throws -> [Float] { try (0..<max(0, steps)).map { try lr(at: $0) } }
}

public struct ConstantLR: Schedule {
    public let base: Float
    public init(_ base: Float) { self.base = base }
    public func lr(at t: Int) -> Float { base }
}

/// η·γ^k after the k-th milestone (iterations at which the rate drops).
public struct StepLR: Schedule {
    public let base: Float, milestones: [Int], gamma: Float
    public init(_ base: Float, milestones: [Int], gamma: Float = 0.1) { self.base = base; self.milestones = milestones.sorted(); self.gamma = gamma }
    public func lr(at t: Int) -> Float { base * Foundation.pow(gamma, Float(milestones.filter { t >= $0 }.count)) }
}

/// The paper's cosine decay over T iterations: η_t = ½(1 + cos(πt/T))·η.
public struct CosineLR: Schedule {
    public let base: Float, total: Int
    public init(_ base: Float, total: Int) { self.base = base; self.total = max(1, total) }
    public func lr(at t: Int) -> Float { 0.5 * (1 + Foundation.cos(Float.pi * Float(min(t, total)) / Float(total))) * base }
}

/// η·(1 − t/T)^p.
public struct PolynomialLR: Schedule {
    public let base: Float, total: Int, power: Float
    public init(_ base: Float, total: Int, power: Float = 2) { self.base = base; self.total = max(1, total); self.power = power }
    public func lr(at t: Int) -> Float { base * Foundation.pow(max(0, 1 - Float(t) / Float(total)), power) }
}

/// Linear warmup (Goyal et al.): over the first m iterations the rate is η·i/m for the i-th
/// (1-based) iteration, η being the inner schedule's first rate; afterwards the inner schedule
/// runs from its own start (so a cosine inside covers the iterations after warmup).
public struct WarmupLR: Schedule {
    public let inner: any Schedule, steps: Int
    public init(_ inner: any Schedule, steps: Int) { self.inner = inner; self.steps = max(0, steps) }
    public func lr(at t: Int) throws -> Float {
        t < steps ? try inner.lr(at: 0) * Float(t + 1) / Float(steps) : try inner.lr(at: t - steps)
    }
}
