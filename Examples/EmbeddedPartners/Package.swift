// swift-tools-version:6.2
// An edge service that can't read files at run time: its partners.d/ is checked and compiled
// into the binary by pullsync's EmbedPartners build plugin. CI builds and runs it (.ci/examples).
import PackageDescription

let package = Package(
    name: "EmbeddedPartners",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The repository two levels up; named, so that the product reference below doesn't
        // depend on the folder the repository was cloned into.
        .package(name: "pullsync", path: "../..")
    ],
    targets: [
        .executableTarget(
            name: "EdgeApp",
            dependencies: [.product(name: "PullSync", package: "pullsync")],
            // Sources/EdgeApp/partners.d links to ../../partners.d: a manifest added there is
            // picked up by the next build.
            plugins: [.plugin(name: "EmbedPartners", package: "pullsync")]
        )
    ]
)
