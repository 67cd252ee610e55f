// swift-tools-version:6.2
// Two edge services built on pullsync, one package so that CI builds their dependencies once
// (.ci/examples builds and runs both):
// - EdgeApp can't read files at run time: its partners.d/ is checked and compiled into the binary
//   by pullsync's EmbedPartners build plugin.
// - HummingbirdSQLite is a Hummingbird app with pull sync on an SQLite store, in a few lines.
import PackageDescription

let package = Package(
    name: "EdgeApps",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The repository two levels up; named, so that the product reference below doesn't
        // depend on the folder the repository was cloned into.
        .package(name: "pullsync", path: "../.."),
        // No traits: with its two default ones, SwiftPM passes their -D flags in a different order from
        // one command to the next (6.3.1), so each `swift build`/`swift test`/`swift run` recompiled
        // Hummingbird (10-30 s); and neither is used here (swift-configuration, Foundation date formats).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
    ],
    targets: [
        .executableTarget(
            name: "EdgeApp",
            dependencies: [
                .product(name: "PullSync", package: "pullsync"),
                .product(name: "PullSyncConsent", package: "pullsync"),
            ],
            // Sources/EdgeApp/partners.d links to ../../partners.d: a manifest added there is
            // picked up by the next build.
            plugins: [.plugin(name: "EmbedPartners", package: "pullsync")]
        ),
        .executableTarget(
            name: "HummingbirdSQLite",
            dependencies: [
                .product(name: "PullSync", package: "pullsync"),
                .product(name: "PullSyncHummingbird", package: "pullsync"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
    ]
)
