// swift-tools-version:6.2
// libFuzzer targets for pullsync, kept out of the main package: they only link with
// `-sanitize=fuzzer` (libFuzzer supplies `main`). Build and run them with `scripts/fuzz`.
import PackageDescription

let package = Package(
    name: "pullsync-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "pullsync", path: "..")],
    targets: [
        // The libFuzzer driver every fuzzer's `main` calls.
        .target(name: "FuzzDriver"),
        // Manifest bytes → ManifestLoader (size and encoding checks, libyaml's events composed with
        // depth, anchor and duplicate checks, validation) → a partner.
        .executableTarget(
            name: "ManifestFuzzer",
            dependencies: [
                "FuzzDriver",
                .product(name: "PullSyncKernel", package: "pullsync"),
                .product(name: "PartnerManifest", package: "pullsync"),
            ]
        ),
        // A request's consent signals (TC string, GPP string and sections, US privacy string) →
        // the IAB decoders and the consent rules the kernel applies.
        .executableTarget(
            name: "ConsentFuzzer",
            dependencies: [
                "FuzzDriver",
                .product(name: "PullSyncKernel", package: "pullsync"),
                .product(name: "IABConsent", package: "pullsync"),
                .product(name: "PullSyncConsent", package: "pullsync"),
            ]
        ),
        // A partner's answer (status, headers, body) → the manifest adapter's classification and
        // the kernel's Retry-After reading.
        .executableTarget(
            name: "ResponseFuzzer",
            dependencies: [
                "FuzzDriver",
                .product(name: "PullSyncKernel", package: "pullsync"),
                .product(name: "PartnerAdapterKit", package: "pullsync"),
            ]
        ),
    ]
)
