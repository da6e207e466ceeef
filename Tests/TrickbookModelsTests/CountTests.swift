import Testing
@testable import TrickbookModels
import TrickbookTensor

func resnet(_ depth: Int, _ variant: String, classes: Int = 1000, inChannels: Int = 3, zeroGamma: Bool = false) throws -> ResNet {
    var c = ResNetConfig(depth: depth)
    c.variant = try #require(ResNetVariant(rawValue: variant))
    c.classes = classes
    c.inChannels = inChannels
    c.zeroGamma = zeroGamma
    return try ResNet(c)
}

@Suite struct CountTests {
    /// The parameter counts the issue gives (torchvision's for A/B, timm's for C/D).
    static let counts: [(Int, String, Int)] = [
        (18, "a", 11_689_512), (18, "b", 11_689_512), (18, "c", 11_708_744), (18, "d", 11_708_744),
        (34, "a", 21_797_672), (34, "b", 21_797_672), (34, "c", 21_816_904), (34, "d", 21_816_904),
        (50, "a", 25_557_032), (50, "b", 25_557_032), (50, "c", 25_576_264), (50, "d", 25_576_264),
        (101, "a", 44_549_160), (101, "b", 44_549_160), (101, "c", 44_568_392), (101, "d", 44_568_392),
        (152, "a", 60_192_808), (152, "b", 60_192_808), (152, "c", 60_212_040), (152, "d", 60_212_040),
    ]

    @Test(arguments: counts)
    func parameterCounts(depth: Int, variant: String, expected: Int) throws {
        #expect(try resnet(depth, variant).parameterCount == expected)
    }

    @Test func smallResNet20() throws {
        #expect(try resnet(20, "a", classes: 10).parameterCount == 272_474)
        #expect(try resnet(20, "a", classes: 10, inChannels: 1).parameterCount == 272_186)
    }

    @Test(arguments: [("a", 3_857_973_248), ("b", 4_089_184_256), ("c", 4_328_824_832), ("d", 4_328_824_832)])
    func resnet50MACs(variant: String, expected: Int) throws {
        #expect(try resnet(50, variant).summary(input: [3, 224, 224]).macs == expected)
    }
}
