// swift-tools-version:6.1
// The decision-cost benchmark (ordo-one/benchmark with its malloc interposer), in a package of
// its own so that the library's users never fetch the benchmark package. It depends on the root
// package by path: `swift package --package-path Benchmarks/Decisions benchmark`.
import PackageDescription

let package = Package(
    name: "pullsync-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "pullsync", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // Only the malloc interposer: the runtime interposer's package is not needed on Linux for these
        // metrics (and naming the trait turns the package's other default traits off).
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "KernelDecisions",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PartnerAdapterKit", package: "pullsync"),
                .product(name: "PullSyncConsent", package: "pullsync"),
                .product(name: "PullSyncHummingbird", package: "pullsync"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PullSyncKernel", package: "pullsync"),
                .product(name: "PullSyncStorage", package: "pullsync"),
                .product(name: "PullSyncTesting", package: "pullsync"),
            ],
            path: "Benchmarks/KernelDecisions",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
