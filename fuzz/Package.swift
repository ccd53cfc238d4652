// swift-tools-version:6.2
import PackageDescription

// libFuzzer targets for MirrorGate's parsers; see README.md here and scripts/fuzz.
// The parser modules are symlinks to ../Sources, compiled with the fuzzer's coverage
// instrumentation: RegistryModel and MirrorGateConfig whole, and of MirrorGateUpstream only the
// header parsers (as UpstreamParsers), which need NIOHTTP1 but not the HTTP client.
// HeaderChecks is a symlink to the header parsers' oracles in the property suite
// (Tests/MirrorGateTests/Properties/HeaderParserChecks.swift), shared by both.

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "MirrorGateFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "RegistryModel", swiftSettings: swiftSettings),
        .target(
            name: "MirrorGateConfig",
            dependencies: ["RegistryModel", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "UpstreamParsers",
            dependencies: [.product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "FuzzNames", dependencies: ["RegistryModel"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzReferences", dependencies: ["RegistryModel"], swiftSettings: swiftSettings),
        .target(
            name: "HeaderChecks",
            dependencies: ["UpstreamParsers", "RegistryModel", .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "FuzzRange", dependencies: ["HeaderChecks"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzAccept", dependencies: ["HeaderChecks"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzAuthChallenge", dependencies: ["HeaderChecks"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzRateLimit", dependencies: ["HeaderChecks"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzRetryAfter", dependencies: ["HeaderChecks"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzContentRange", dependencies: ["HeaderChecks"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzConfigValues", dependencies: ["MirrorGateConfig"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzConfigLoader", dependencies: ["MirrorGateConfig", "RegistryModel"], swiftSettings: swiftSettings),
    ]
)
