import AsyncHTTPClient
import Foundation
import NIOCore
import PartnerSimulator
import PullSyncTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 20 through `pullsync serve` as a real process, over loopback: the origin receives the
/// request's consented EIDs in `--eids-header`, the admin API answers them, and a browser can't
/// put its own header in their place.
@Suite(.serialized) struct ServeEIDsTests {
    /// TCF v2 specification example: purposes 1-3, vendors 2, 6 and 8 (not 3).
    static let tcfVendors268 = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"
    static let header = "X-Pullsync-EIDs"

    @Test func theOriginGetsTheConsentedEIDsAndNeverTheBrowsersOwnHeader() async throws {
        let ca = TestCertificateAuthority()
        let partnerServer = try await PartnerServer.start(tls: try ca.issue(dnsNames: ["localhost"]))
        let origin = try await PartnerServer.start()
        origin.script(path: "/page", .respond(status: 200, headers: [("Content-Type", "text/html")], body: Array("<p>page</p>".utf8)))
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let partners = directory.appendingPathComponent("partners.d")
        try FileManager.default.createDirectory(at: partners, withIntermediateDirectories: true)
        // Vendor 2 is consented in the TC string above, vendor 3 is not.
        for (id, vendor) in [("p2", 2), ("p3", 3)] {
            partnerServer.script(path: "/\(id)/pull", .uid("\(id)-uid"))
            try """
            id: \(id)
            source_domain: \(id).example
            pull:
              url: https://localhost:\(partnerServer.port)/\(id)/pull
              allowed_hosts: [localhost]
              timeout: 30s
            consent:
              tcf_vendor_id: \(vendor)
            \(id == "p2" ? "eid: { source: ID-Two.example, atype: 1, mm: 3 }" : "")
            """.write(to: partners.appendingPathComponent("\(id).yaml"), atomically: true, encoding: .utf8)
        }
        let caFile = directory.appendingPathComponent("ca.pem").path
        try ca.writeCACertificate(to: caFile)
        let token = "admin-\(UUID().uuidString)"
        let serve = try await ServeProcess(
            [
                "--partners", partners.path, "--allow-loopback", "--tls-ca-file", caFile,
                "--store", "sqlite:" + directory.appendingPathComponent("store.db").path,
                "--origin", "http://127.0.0.1:\(origin.port)", "--eids-header", Self.header,
                "--eid-inserter", "publisher.example",
            ],
            environment: ["PULLSYNC_ADMIN_TOKEN": token]
        )
        defer { serve.stop() }
        let base = "http://127.0.0.1:\(serve.port)"
        let client = HTTPClient(eventLoopGroupProvider: .singleton)

        func page(cookies: [String] = [], headers: [(String, String)] = []) async throws -> HTTPClientResponse {
            var request = HTTPClientRequest(url: base + "/page")
            if !cookies.isEmpty { request.headers.add(name: "Cookie", value: cookies.joined(separator: "; ")) }
            // A browser (or an attacker) sending the header itself: it must never reach the origin.
            request.headers.add(name: Self.header, value: "eyJzcG9vZmVkIjp0cnVlfQ")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response = try await client.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            #expect(response.status == .ok)
            return response
        }
        /// The EIDs the origin received with its latest request (`[]` when the header was absent).
        func originSaw() throws -> [OpenRTB.EIDObject] {
            let seen = try #require(origin.requests.last)
            let values = seen.headers.filter { $0.0.lowercased() == Self.header.lowercased() }.map(\.1)
            #expect(values.count <= 1, "one header at most: \(values)")
            return try values.first.map(OpenRTB.eids(fromHeader:)) ?? []
        }
        func admin(_ path: String, token: String? = token) async throws -> (status: UInt, body: String) {
            var request = HTTPClientRequest(url: base + "/_pullsync/" + path)
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            let response = try await client.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (response.status.code, String(buffer: body))
        }
        func adminEIDs(_ path: String) async throws -> [OpenRTB.EIDObject] {
            let (status, body) = try await admin(path)
            #expect(status == 200, "\(body)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            #expect(Set(object.keys) == ["eids"])
            return try OpenRTB.eids(from: JSONSerialization.data(withJSONObject: object["eids"] ?? []))
        }

        // A new browser: an EC is issued; it has no UIDs yet, so no EIDs (and not the spoofed header).
        let first = try await page()
        let cookie = try #require(first.headers["set-cookie"].first { $0.hasPrefix("ts-ec=") })
        let ec = String(cookie.dropFirst("ts-ec=".count).prefix { $0 != ";" })
        #expect(try originSaw() == [])
        #expect(await eventually {
            let ids = try? await admin("ids/\(ec)").body
            return ids?.contains("p2-uid") == true && ids?.contains("p3-uid") == true
        })

        // The returning browser: both partners' UIDs, as OpenRTB EIDs.
        _ = try await page(cookies: ["ts-ec=\(ec)"])
        let both = [
            // p2's manifest maps it: `eid: { source: ID-Two.example, atype: 1, mm: 3 }`.
            OpenRTB.EIDObject(
                source: "id-two.example",
                uids: [OpenRTB.UID(id: "p2-uid", atype: 1)],
                inserter: "publisher.example",
                mm: 3
            ),
            OpenRTB.EIDObject(source: "p3.example", uids: [OpenRTB.UID(id: "p3-uid", atype: 3)], inserter: "publisher.example"),
        ]
        #expect(try originSaw() == both)
        // Again (now from the node's memory, once the page's decision found both fresh): the same.
        _ = try await page(cookies: ["ts-ec=\(ec)"])
        #expect(try originSaw() == both)

        // The admin API, with the request's consent as query parameters.
        #expect(try await adminEIDs("eids/\(ec)") == both)
        #expect(try await adminEIDs("eids/\(ec)?tcf=\(Self.tcfVendors268)") == [both[0]])

        // The same browser with a TC string that refuses vendor 3: one EID, and (issue 19) p3's UID
        // is revoked off the page path, p2's kept.
        _ = try await page(cookies: ["ts-ec=\(ec)", "euconsent-v2=\(Self.tcfVendors268)"])
        #expect(try originSaw() == [both[0]])
        #expect(await eventually { (try? await admin("ids/\(ec)").body.contains("p3-uid")) == false })
        #expect(try await admin("ids/\(ec)").body.contains("p2-uid"))
        #expect(try await adminEIDs("eids/\(ec)") == [both[0]])
        #expect(try await adminEIDs("eids/\(ec)?us_privacy=1YYN") == [])
        #expect(try await admin("eids/\(ec)", token: nil).status == 401)
        #expect(try await admin("eids/\(String(repeating: "0", count: 64)).AbC123").status == 404)
        #expect(try await admin("eids/\(ec)?gpp_sid=x").status == 400)

        // Sec-GPC withdraws the EC: no EIDs on that page, nor after.
        _ = try await page(cookies: ["ts-ec=\(ec)"], headers: [("Sec-GPC", "1")])
        #expect(try originSaw() == [])
        #expect(await eventually { (try? await admin("ids/\(ec)").body.contains(#""withdrawn":true"#)) == true })
        _ = try await page(cookies: ["ts-ec=\(ec)"])
        #expect(try originSaw() == [])
        #expect(try await adminEIDs("eids/\(ec)") == [])

        try await client.shutdown()
        kill(serve.process.processIdentifier, SIGTERM)
        #expect(await eventually { !serve.process.isRunning })
        #expect(serve.process.terminationStatus == 0)
        try await origin.shutdown()
        try await partnerServer.shutdown()
    }
}
