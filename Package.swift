// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Brook",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BrookProtocol", targets: ["BrookProtocol"]),
        .library(name: "BrookBroker", targets: ["BrookBroker"]),
        .library(name: "Brook", targets: ["Brook"]),
        .library(name: "BrookPipeline", targets: ["BrookPipeline"]),
        .library(name: "BrookOps", targets: ["BrookOps"]),
        .library(name: "BrookLedger", targets: ["BrookLedger"]),
        .executable(name: "brook", targets: ["brook"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", exact: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // CRC-32C with the SSE4.2 instruction, and runtime loading of liblz4/libzstd.
        .target(name: "CBrookNative", linkerSettings: [.linkedLibrary("z"), .linkedLibrary("dl")]),
        .target(
            name: "BrookProtocol",
            dependencies: [
                "CBrookNative",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "BrookBroker",
            dependencies: [
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The pure-Swift Kafka client: connections, metadata, producer, consumer groups, admin.
        .target(
            name: "Brook",
            dependencies: [
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The consumer framework: ordering, backpressure, retries, dead letters, exactly-once sinks.
        .target(
            name: "BrookPipeline",
            dependencies: [
                "Brook",
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The balance domain: events, ledger rules, SQLite and PostgreSQL stores, the legacy poller,
        // the event generator, the independent verifier, the worker service and the benchmark.
        .target(
            name: "BrookLedger",
            dependencies: [
                "Brook",
                "BrookProtocol",
                "BrookPipeline",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // Operations: topics-as-code (brook.yaml), lag evaluation (Burrow's rules, exact time lag), and later load tests, repartitioning.
        .target(
            name: "BrookOps",
            dependencies: [
                "Brook",
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "brook",
            dependencies: [
                "CBrookNative",
                "Brook",
                "BrookPipeline",
                "BrookOps",
                "BrookLedger",
                "BrookProtocol",
                "BrookBroker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // libFuzzer target for the request decoders: built with `-DFUZZING -sanitize=fuzzer`
        // by scripts/fuzz.sh; a plain build is a corpus replayer.
        .executableTarget(
            name: "BrookFuzz",
            dependencies: [
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BrookProtocolTests",
            dependencies: [
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BrookTests",
            dependencies: [
                "Brook",
                "BrookBroker",
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BrookOpsTests",
            dependencies: [
                "BrookOps",
                "Brook",
                "BrookBroker",
                "BrookProtocol",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BrookPipelineTests",
            dependencies: [
                "BrookPipeline",
                "Brook",
                "BrookBroker",
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "BrookLedgerTests",
            dependencies: [
                "BrookLedger",
                "BrookPipeline",
                "Brook",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "BrookBrokerTests",
            dependencies: [
                "BrookBroker",
                "BrookProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
