// swift-tools-version:6.2
import PackageDescription

// libFuzzer targets for MirrorGate's parsers; see README.md here and scripts/fuzz.
// The parser modules are symlinks to ../Sources, compiled with the fuzzer's coverage
// instrumentation: RegistryModel and MirrorGateConfig whole, and of MirrorGateUpstream only the
// two header parsers (as UpstreamParsers), which need NIOHTTP1 but not the HTTP client.

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
        .executableTarget(name: "FuzzRange", dependencies: ["RegistryModel"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzAccept", dependencies: ["RegistryModel"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzAuthChallenge", dependencies: ["UpstreamParsers"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "FuzzRateLimit",
            dependencies: ["UpstreamParsers", .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "FuzzConfigValues", dependencies: ["MirrorGateConfig"], swiftSettings: swiftSettings),
        .executableTarget(name: "FuzzConfigLoader", dependencies: ["MirrorGateConfig", "RegistryModel"], swiftSettings: swiftSettings),
    ]
)
