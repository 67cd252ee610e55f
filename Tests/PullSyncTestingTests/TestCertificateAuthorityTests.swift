import AsyncHTTPClient
import Foundation
import NIOSSL
import PullSyncTesting
import PartnerSimulator
import Testing
import X509

extension AllPullSyncTestingTests {
    @Suite("TestCertificateAuthority")
    struct TestCertificateAuthorityTests {
        @Test("the CA certificate is a self-signed P-256 CA valid from an hour ago for a day")
        func caCertificate() throws {
            let ca = TestCertificateAuthority(commonName: "unit CA")
            #expect(ca.caCertificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
            let certificate = try Certificate(pemEncoded: ca.caCertificatePEM)
            #expect(certificate.subject == certificate.issuer)
            #expect(certificate.subject.description.contains("unit CA"))
            #expect(try certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
            #expect(try certificate.extensions.keyUsage?.keyCertSign == true)
            #expect(certificate.signatureAlgorithm == .ecdsaWithSHA256)
            let now = Date()
            #expect(certificate.notValidBefore < now.addingTimeInterval(-3000))
            #expect(certificate.notValidAfter > now.addingTimeInterval(20 * 3600))
            #expect(certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore) == 86400)
        }

        @Test("an issued leaf names the hosts and IPs, is for serverAuth, and chains to the CA")
        func issuedLeaf() throws {
            let ca = TestCertificateAuthority()
            let issued = try ca.issue(dnsNames: ["localhost", "partner.test"], ipAddresses: ["127.0.0.1", "::1"])
            #expect(issued.certificateChain.count == 2)
            #expect(issued.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            #expect(issued.certificateChainPEM.components(separatedBy: "-----BEGIN CERTIFICATE-----").count == 3)

            let leaf = try Certificate(pemEncoded: issued.leafCertificatePEM)
            #expect(issued.certificateChainPEM == issued.leafCertificatePEM + ca.caCertificatePEM)
            let caCertificate = try Certificate(pemEncoded: ca.caCertificatePEM)
            #expect(leaf.issuer == caCertificate.subject)
            #expect(caCertificate.publicKey.isValidSignature(leaf.signature, for: leaf))
            #expect(try leaf.extensions.basicConstraints == .notCertificateAuthority)
            #expect(try leaf.extensions.extendedKeyUsage?.contains(.serverAuth) == true)
            let names = try #require(try leaf.extensions.subjectAlternativeNames)
            #expect(
                Array(names) == [
                    .dnsName("localhost"),
                    .dnsName("partner.test"),
                    .ipAddress(.init(contentBytes: [127, 0, 0, 1])),
                    .ipAddress(.init(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
                ]
            )
            // The PEM key and the NIOSSL key are the same key.
            #expect(try NIOSSLPrivateKey(bytes: Array(issued.privateKeyPEM.utf8), format: .pem) == issued.privateKey)
            // Offers only HTTP/1.1.
            #expect(issued.makeServerConfiguration().applicationProtocols == ["http/1.1"])
        }

        @Test("issuing for something that is not an IP literal throws")
        func invalidIPAddress() {
            let ca = TestCertificateAuthority()
            #expect(throws: TestCertificateAuthority.IssueError.invalidIPAddress("localhost")) {
                try ca.issue(dnsNames: ["localhost"], ipAddresses: ["localhost"])
            }
        }

        @Test("two authorities do not share keys")
        func distinctAuthorities() throws {
            let first = TestCertificateAuthority()
            let second = TestCertificateAuthority()
            #expect(first.caCertificatePEM != second.caCertificatePEM)
            let leaf = try Certificate(pemEncoded: first.issue(dnsNames: ["localhost"]).leafCertificatePEM)
            let secondCertificate = try Certificate(pemEncoded: second.caCertificatePEM)
            #expect(!secondCertificate.publicKey.isValidSignature(leaf.signature, for: leaf))
        }

        @Test("writeCACertificate writes the PEM a --tls-ca-file flag can load")
        func writeCACertificate() throws {
            let ca = TestCertificateAuthority()
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("pullsync-ca-\(UInt64.random(in: 0 ... .max)).pem").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try ca.writeCACertificate(to: path)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == ca.caCertificatePEM)
            #expect(try NIOSSLCertificate.fromPEMFile(path) == [ca.caCertificate])
        }

        @Test("a client can trust the CA from its file or as an additional root")
        func trustForms() async throws {
            let ca = TestCertificateAuthority()
            let server = try await PartnerServer.start(tls: ca.issue(dnsNames: ["localhost"]))
            server.script(path: "/sync", .uid("ok"))
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("pullsync-ca-\(UInt64.random(in: 0 ... .max)).pem").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try ca.writeCACertificate(to: path)
            do {
                let trustFile: (inout HTTPClient.Configuration) -> Void = {
                    $0.tlsConfiguration?.trustRoots = .file(path)
                }
                let viaFile = try await withClient(configure: trustFile) {
                    try await fetch($0, pullRequest(server, "/sync"))
                }
                #expect(viaFile.text == #"{"uid":"ok"}"#)
                let trustDefaultAndCA: (inout HTTPClient.Configuration) -> Void = {
                    $0.tlsConfiguration?.trustRoots = .default
                    $0.tlsConfiguration?.additionalTrustRoots = [ca.additionalTrustRoots]
                }
                let viaAdditional = try await withClient(configure: trustDefaultAndCA) {
                    try await fetch($0, pullRequest(server, "/sync"))
                }
                #expect(viaAdditional.text == #"{"uid":"ok"}"#)
                try await server.shutdown()
            } catch {
                try? await server.shutdown()
                throw error
            }
        }
    }
}
