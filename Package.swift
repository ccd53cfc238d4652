// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "MirrorGate",
    // Linux is the supported platform: CI and every test run there (Debian 12). macOS is
    // declared so the package resolves for development there, but a macOS build is not
    // tested. Cache file I/O is MirrorGateStorage's alone (Syscalls.swift); the other
    // system calls, each with a Darwin branch, are process-level: the open-file limit, the
    // allocator's tuning and accept back-off (MirrorGateHTTP), address parsing (Upstream's
    // outbound checks, Config's host validation), errno text (S3), one write(2) per log line
    // (Logging) and the terminal's width (the executable).
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mirrorgate", targets: ["MirrorGate"]),
        .library(name: "MirrorGateCore", targets: ["MirrorGateCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        /// The registry protocol: names, references, digests, media types, Accept negotiation, ranges, errors.
        .target(
            name: "RegistryModel",
            swiftSettings: swiftSettings
        ),
        /// `gateway.yaml`: decoding, environment expansion and validation.
        .target(
            name: "MirrorGateConfig",
            dependencies: [
                "RegistryModel",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Content-addressed blob storage and the metadata store.
        .target(
            name: "MirrorGateStorage",
            dependencies: [
                "RegistryModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Reading an AsyncHTTPClient response body under a watchdog (stall timeout, minimum
        /// rate, length checks) with back-pressure: shared by the upstream and S3 clients.
        .target(
            name: "MirrorGateBodyGuard",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        /// S3 as blob storage: a small client (SigV4 signing, object GET/HEAD/PUT/DELETE, list,
        /// multipart upload and presigned GET URLs over AsyncHTTPClient) and the `BlobStore` on it.
        /// Hand-written because no Swift S3 library (Soto, the AWS SDK) is available to this project.
        .target(
            name: "MirrorGateS3",
            dependencies: [
                "RegistryModel",
                "MirrorGateStorage",
                "MirrorGateBodyGuard",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Shared state of several replicas in PostgreSQL: the tag and object index with links, the
        /// pull budget ledger, fetch leases (cross-replica single flight), janitor leadership, and
        /// the schema migrations that create them.
        .target(
            name: "MirrorGatePostgres",
            dependencies: [
                "MirrorGateStorage",
                "RegistryModel",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Talking to upstream registries: HTTP, token auth, redirects, streaming bodies.
        .target(
            name: "MirrorGateUpstream",
            dependencies: [
                "RegistryModel",
                "MirrorGateConfig",
                "MirrorGateBodyGuard",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        /// The pull logic: routing a request to upstreams, tag resolution, verified fetch and cache fill.
        .target(
            name: "MirrorGateCore",
            dependencies: [
                "RegistryModel",
                "MirrorGateConfig",
                "MirrorGateStorage",
                "MirrorGateS3",
                "MirrorGatePostgres",
                "MirrorGateUpstream",
                // The peer client (Cluster/PeerClient.swift) talks to other replicas directly.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Log lines as text, JSON or logfmt, one event a line.
        .target(
            name: "MirrorGateLogging",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        /// The HTTP front: Hummingbird routes for the distribution API.
        .target(
            name: "MirrorGateHTTP",
            dependencies: [
                "RegistryModel",
                "MirrorGateConfig",
                "MirrorGateCore",
                "MirrorGateStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // The HTTP parts Hummingbird's pipeline carries (already in the graph through Hummingbird).
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MirrorGate",
            dependencies: [
                "MirrorGateConfig",
                "MirrorGateLogging",
                "MirrorGateCore",
                "MirrorGateHTTP",
                "MirrorGateStorage",
                "MirrorGateUpstream",
                "RegistryModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MirrorGateTests",
            dependencies: [
                "RegistryModel",
                "MirrorGateConfig",
                "MirrorGateStorage",
                "MirrorGateCore",
                "MirrorGateHTTP",
                "MirrorGateUpstream",
                "MirrorGateLogging",
                "MirrorGateS3",
                "MirrorGateBodyGuard",
                "MirrorGatePostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "RegistryModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
