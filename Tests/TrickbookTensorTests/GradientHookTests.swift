import Testing
@testable import TrickbookTensor

/// Post-accumulate gradient hooks (what data-parallel training starts its sums from): called once
/// a leaf's gradient of the pass is whole, once per pass, for every owner that added one.
@Suite struct GradientHookTests {
    final class Owner {}

    @Test func aHookSeesTheWholeGradientOncePerPass() throws {
        let x = try Tensor([1, 2, 3], shape: [3])
        x.requiresGrad = true
        let owner = Owner()
        var seen: [[Float]] = []
        x.addGradientHook(owner: owner) { seen.append(x.grad?.scalars ?? []) }
        // x reaches the loss by two paths: d/dx (x·x + 3x) = 2x + 3, the sum of both.
        try ((x * x) + (x * 3)).sum().backward()
        #expect(seen == [[5, 7, 9]])
        try (x * 2).sum().backward()  // gradients accumulate: 2x + 3 + 2
        #expect(seen == [[5, 7, 9], [7, 9, 11]])
    }

    @Test func eachOwnerKeepsItsHooksUntilItRemovesThem() throws {
        let w = try Tensor([0.5, -1], shape: [2])
        w.requiresGrad = true
        let first = Owner(), second = Owner()
        var calls: [String] = []
        w.addGradientHook(owner: first) { calls.append("first") }
        w.addGradientHook(owner: second) { calls.append("second") }
        try (w * w).sum().backward()
        #expect(calls == ["first", "second"])
        w.removeGradientHooks(owner: second)
        try (w * w).sum().backward()
        #expect(calls == ["first", "second", "first"])
        w.removeGradientHooks(owner: first)
        try (w * w).sum().backward()
        #expect(calls.count == 3)
    }

    @Test func aFailingHookStopsBackwardAndLeavesNoGradients() throws {
        struct Refused: Error {}
        let a = try Tensor([1, 2], shape: [2]), b = try Tensor([3, 4], shape: [2])
        a.requiresGrad = true; b.requiresGrad = true
        let owner = Owner()
        a.addGradientHook(owner: owner) { throw Refused() }
        #expect(throws: Refused.self) { try (a * b).sum().backward() }
        // A pass stopped half-way leaves no gradient for an optimizer to step on.
        #expect(a.grad == nil && b.grad == nil)
    }
}
