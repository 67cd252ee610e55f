// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "pullsync",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PullSync", targets: ["PullSync"]),
        .library(name: "PullSyncKernel", targets: ["PullSyncKernel"]),
        .library(name: "PullSyncStorage", targets: ["PullSyncStorage"]),
        .library(name: "IABConsent", targets: ["IABConsent"]),
        .library(name: "PullSyncConsent", targets: ["PullSyncConsent"]),
        .library(name: "PartnerAdapterKit", targets: ["PartnerAdapterKit"]),
        .library(name: "PartnerManifest", targets: ["PartnerManifest"]),
        .library(name: "PullSyncHummingbird", targets: ["PullSyncHummingbird"]),
        .library(name: "PullSyncEdge", targets: ["PullSyncEdge"]),
        .library(name: "PullSyncSQLite", targets: ["PullSyncSQLite"]),
        .library(name: "PullSyncPostgres", targets: ["PullSyncPostgres"]),
        .library(name: "PullSyncTesting", targets: ["PullSyncTesting"]),
        .executable(name: "pullsync", targets: ["pullsync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        // No traits: with its two default ones, SwiftPM passes their -D flags in a different order from
        // one command to the next (6.3.1), so each `swift build`/`swift test`/`swift run` recompiled
        // Hummingbird (10-30 s); and neither is used here (swift-configuration, Foundation date formats).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // The IAB consent strings (TCF v2 TC string, GPP, US privacy) decoded: no dependencies.
        .target(name: "IABConsent", swiftSettings: swiftSettings),
        // Decisions and fan-out: no sockets, no YAML, no NIO, no Foundation, no consent decoding.
        .target(
            name: "PullSyncKernel",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The spec's consent rules over the IAB decoders: the kernel's `ConsentRules`.
        .target(
            name: "PullSyncConsent",
            dependencies: ["IABConsent", "PullSyncKernel"],
            swiftSettings: swiftSettings
        ),
        // The adapter framework: templates, secret references, adapter descriptors and parameters,
        // the registry of compiled adapters, and the manifest-driven HTTP adapter.
        .target(
            name: "PartnerAdapterKit",
            dependencies: ["PullSyncKernel"],
            swiftSettings: swiftSettings
        ),
        // One YAML document read strictly from libyaml's events (no anchors, aliases or tags;
        // bounded size and depth), as a node tree with positions; files read safely.
        .target(
            name: "StrictYAML",
            dependencies: ["CLibYAML"],
            swiftSettings: swiftSettings
        ),
        // YAML manifests -> validated partner definitions, with source positions.
        .target(
            name: "PartnerManifest",
            dependencies: [
                "PullSyncKernel",
                "PartnerAdapterKit",
                "StrictYAML",
            ],
            swiftSettings: swiftSettings
        ),
        // The public face: registry loading, configuration, Service conformance.
        .target(
            name: "PullSync",
            dependencies: [
                "PullSyncSQLite",
                "PullSyncConsent",
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                "PullSyncStorage",
                "PartnerAdapterKit",
                "PullSyncKernel",
                "PartnerManifest",
                "PullSyncAdapters",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // The storage contract (`PullSyncStore`), the in-memory store, store URLs and their drivers.
        .target(
            name: "PullSyncStorage",
            dependencies: [
                "PullSyncKernel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The embedded, persistent store (`sqlite:PATH`), the default of `pullsync serve`.
        .target(
            name: "PullSyncSQLite",
            dependencies: [
                "PullSyncStorage",
                "PullSyncKernel",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The store for many edge nodes (`postgres://`): its own product, so that users who
        // don't need it don't build postgres-nio.
        .target(
            name: "PullSyncPostgres",
            dependencies: [
                "PullSyncStorage",
                "PullSyncKernel",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Middleware for Hummingbird services: route classification, EC issuing, consent, and
        // submitting organic requests to the dispatcher after the response is written.
        .target(
            name: "PullSyncHummingbird",
            dependencies: [
                "PullSync",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The reference edge service behind `pullsync serve`: the middleware on a Hummingbird
        // app, an origin proxy, the admin API and Prometheus metrics.
        .target(
            name: "PullSyncEdge",
            dependencies: [
                "PullSyncStorage",
                "PartnerAdapterKit",
                "PullSyncHummingbird",
                "PullSyncSQLite",
                "PullSyncPostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A scriptable partner on loopback (HTTP, and HTTPS with a throwaway CA it generates): what
        // `pullsync demo`, the benchmarks and the tests talk to instead of real partners.
        .target(
            name: "PartnerSimulator",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test-only helpers: a deterministic clock and randomness, a scripted transport, gates,
        // the hang guard, child processes.
        .target(
            name: "PullSyncTesting",
            dependencies: [
                "PartnerAdapterKit",
                "PullSyncKernel",
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pullsync",
            dependencies: [
                "PartnerManifest",
                "PullSyncAdapters",
                "PullSyncConsent",
                "PartnerSimulator",
                "PullSyncStorage",
                "PartnerAdapterKit",
                "PullSync",
                "PullSyncEdge",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The benchmarks behind BENCHMARKS.md (`scripts/bench`); the decision-cost benchmark with
        // ordo-one/benchmark is a package of its own, Benchmarks/Decisions, so users never fetch it.
        .executableTarget(
            name: "PullSyncBench",
            dependencies: [
                "PullSyncConsent",
                "PartnerSimulator",
                "PullSyncStorage",
                "PartnerAdapterKit",
                "PullSync",
                "PullSyncTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Benchmarks/PullSyncBench",
            swiftSettings: swiftSettings
        ),
        // Measure 1's instruction counts under callgrind: the kernel alone, its jobs on the main thread
        // (valgrind 3.19 crashes when Swift's cooperative pool starts its threads).
        .executableTarget(
            name: "KernelInstructions",
            dependencies: ["PullSyncStorage", "PartnerAdapterKit", "PullSyncKernel", "PullSyncConsent"],
            path: "Benchmarks/KernelInstructions",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "StoreBenchmark",
            dependencies: [
                "PullSyncConsent",
                "PullSync",
                "PullSyncSQLite",
                "PullSyncPostgres",
                "PullSyncStorage",
                "PullSyncTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/StoreThroughput",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSyncKernelTests",
            dependencies: [
                "PullSyncConsent",
                "PullSyncStorage",
                "PartnerAdapterKit",
                "PullSyncKernel",
                "PullSyncTesting",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSyncStoreTests",
            dependencies: [
                "PullSyncConsent",
                "PartnerSimulator",
                "PullSyncStorage",
                "PartnerAdapterKit",
                "PullSyncEdge",
                "PullSyncSQLite",
                "PullSyncPostgres",
                "PullSyncTesting",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IABConsentTests",
            dependencies: ["IABConsent", "PullSyncConsent", "PullSyncKernel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StrictYAMLTests",
            dependencies: ["StrictYAML"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PartnerManifestTests",
            dependencies: ["PartnerAdapterKit", "PartnerManifest", "StrictYAML", "PullSyncKernel", "PullSyncTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSyncTests",
            dependencies: [
                "PartnerManifest",
                "PullSyncConsent",
                "PartnerSimulator",
                "PullSyncStorage",
                "PartnerAdapterKit",
                "PullSync",
                "PullSyncTesting",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSyncHummingbirdTests",
            dependencies: [
                "PullSyncConsent",
                "PullSyncStorage",
                "PullSyncHummingbird",
                "PullSyncTesting",
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSyncEdgeTests",
            dependencies: [
                "PartnerSimulator",
                "PullSyncEdge",
                "PullSyncTesting",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "pullsyncTests",
            dependencies: ["pullsync", "PullSyncTesting", "PartnerSimulator", "PullSyncSQLite", "PartnerManifestTool"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSyncBenchTests",
            dependencies: ["PullSyncBench", "PullSyncKernel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSyncTestingTests",
            dependencies: [
                "PartnerSimulator",
                "PullSyncTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// MARK: - Compiled adapters, the manifest tool and the plugins

package.products += [
    .library(name: "PullSyncAdapters", targets: ["PullSyncAdapters"]),
    // Applied by an edge service to its target: compiles the target's partners.d/ into the binary.
    .plugin(name: "EmbedPartners", targets: ["EmbedPartners"]),
    // `swift package lint-partners`: the same check as `pullsync check`.
    .plugin(name: "LintPartners", targets: ["LintPartners"]),
]

package.targets += [
    // Compiled adapters for partners that manifests can't describe (signatures, JSON bodies).
    .target(
        name: "PullSyncAdapters",
        dependencies: [
            "PullSyncKernel",
            "PartnerAdapterKit",
            .product(name: "Crypto", package: "swift-crypto"),
        ],
        swiftSettings: swiftSettings
    ),
    // The one tool both plugins run: validates manifests, generates Swift. It is built for the host
    // beside every consumer's build, so it depends on manifest parsing only.
    .executableTarget(
        name: "PartnerManifestTool",
        dependencies: ["PartnerManifest"],
        swiftSettings: swiftSettings
    ),
    .plugin(
        name: "EmbedPartners",
        capability: .buildTool(),
        dependencies: ["PartnerManifestTool"]
    ),
    .plugin(
        name: "LintPartners",
        capability: .command(
            intent: .custom(
                verb: "lint-partners",
                description: "Validate partner manifests (partners.d/ by default), as pullsync check does."
            )
            // No permissions: a lint reads and prints, and never writes to the package.
        ),
        dependencies: ["PartnerManifestTool"]
    ),
    .testTarget(
        name: "PullSyncAdaptersTests",
        dependencies: [
                "PartnerManifest",
                "PullSyncConsent",
                "PartnerSimulator",
                "PullSyncStorage",
                "PartnerAdapterKit",
            "PullSyncAdapters",
            "PullSync",
            "PullSyncTesting",
        ],
        // Read at run time from the source tree (one folder per partner), not bundled.
        exclude: ["Fixtures"],
        swiftSettings: swiftSettings
    ),
]

// MARK: - libyaml

package.targets += [
    // The system libyaml (Debian's libyaml-dev, Homebrew's libyaml): PartnerManifest reads its event stream.
    .systemLibrary(
        name: "CLibYAML",
        pkgConfig: "yaml-0.1",
        providers: [.apt(["libyaml-dev"]), .brew(["libyaml"])]
    ),
]
