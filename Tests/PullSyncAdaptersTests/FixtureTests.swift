import Foundation
import PartnerAdapterKit
import PartnerManifest
import PullSync
import PullSyncTesting
import Testing

/// Every partner fixture (`Fixtures/<partner>/{exemplary,supplemental}/*.json`) through the
/// kernel with a scripted transport; and the rule that every shipped partner and every compiled
/// adapter has a normal case.
@Suite struct FixtureTests {
    @Test(arguments: FixtureCase.all())
    func fixture(_ fixtureCase: FixtureCase) async throws {
        let fixture = try fixtureCase.fixture.get()
        let reply = fixture.transportResult.map { ScriptedTransport.Reply($0) }
        // With no mocked response the adapter must refuse before anything is sent.
        let transport = ScriptedTransport(fallback: reply ?? .failure(.refusedTarget))
        let result = try await FixtureRun.run(fixtureCase, fixture, transport: transport)
        FixtureRun.check(result, against: fixture, name: fixtureCase.testDescription)
        // What reached the transport is what the adapter built, sent once (or never).
        #expect(transport.records.count == (fixture.expectedRequest == nil ? 0 : 1))
    }

    @Test func thereAreFixtures() {
        let cases = FixtureCase.all()
        #expect(cases.filter { $0.kind == .exemplary }.count >= 6)
        #expect(cases.filter { $0.kind == .supplemental }.count >= 20)
    }

    @Test func everyShippedPartnerAndEveryCompiledAdapterHasANormalFixture() {
        let shipped = ManifestLoader.load(paths: [FixtureLayout.shippedPartners.path]).manifests
        #expect(shipped.count >= 4)
        let missing = FixtureLayout.missing(
            shipped: shipped,
            fixturePartners: FixtureLayout.fixturePartners(in: fixturesFolder),
            adapters: AdapterRegistry.builtIn.descriptors
        )
        #expect(missing == [])
    }

    @Test func aPartnerOrAdapterWithoutANormalFixtureIsReported() throws {
        let shipped = ManifestLoader.load(paths: [FixtureLayout.shippedPartners.path]).manifests
        let acme = try #require(shipped.first { $0.id == "acme" })
        let keystone = try #require(shipped.first { $0.id == "keystone" })
        let missing = FixtureLayout.missing(
            shipped: [acme, keystone],
            fixturePartners: [("acme", acme, 1), ("keystone", keystone, 0), ("stray", nil, 1)],
            adapters: AdapterRegistry.builtIn.descriptors
        )
        #expect(
            missing == [
                "partners.d manifest 'keystone' has no Fixtures/keystone/exemplary/*.json",
                "Fixtures/stray has no manifest.yaml and no partners.d manifest with id 'stray'",
                "compiled adapter 'json-post' has no exemplary fixture for a partner that uses it",
                "compiled adapter 'signed-get' has no exemplary fixture for a partner that uses it",
            ]
        )
    }
}
