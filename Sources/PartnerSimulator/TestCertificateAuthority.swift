import Crypto
import Foundation
public import NIOSSL
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A certificate chain and key issued by a ``TestCertificateAuthority``, in PEM and in NIOSSL's forms.
public struct IssuedCertificate: Sendable {
    /// The leaf followed by the CA certificate, PEM-encoded (what a server presents).
    public let certificateChainPEM: String
    /// The leaf certificate alone, PEM-encoded (for inspecting it).
    public let leafCertificatePEM: String
    /// The leaf's private key, PEM-encoded (PKCS#8).
    public let privateKeyPEM: String
    /// The chain as NIOSSL certificates, leaf first.
    public let certificateChain: [NIOSSLCertificate]
    /// The leaf's private key for NIOSSL.
    public let privateKey: NIOSSLPrivateKey

    /// A server configuration presenting this chain. Offers only `http/1.1` over ALPN by default, so
    /// clients that could speak HTTP/2 (AsyncHTTPClient does) stay on HTTP/1.1.
    public func makeServerConfiguration(applicationProtocols: [String] = ["http/1.1"]) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: certificateChain.map { .certificate($0) },
            privateKey: .privateKey(privateKey)
        )
        configuration.applicationProtocols = applicationProtocols
        return configuration
    }
}

/// A throwaway certificate authority made fresh in memory, so HTTPS tests need no files checked in and
/// no system trust store: issue a leaf for the server, trust this CA in the client.
public struct TestCertificateAuthority: Sendable {
    /// Why issuing failed.
    public enum IssueError: Error, Equatable {
        /// An entry of `ipAddresses` is not an IPv4 or IPv6 literal.
        case invalidIPAddress(String)
    }

    /// The CA's certificate, PEM-encoded: what a client must trust.
    public let caCertificatePEM: String
    /// The CA's certificate for NIOSSL.
    public let caCertificate: NIOSSLCertificate

    private let caKey: P256.Signing.PrivateKey
    private let caName: DistinguishedName
    private let caSubjectKeyIdentifier: ArraySlice<UInt8>
    private let notValidBefore: Date
    private let notValidAfter: Date

    /// Makes a new CA: a fresh P-256 key and a self-signed certificate (CA:true, keyCertSign) valid from an
    /// hour ago (to tolerate clock skew) for one day.
    public init(commonName: String = "pullsync test CA") {
        // Every input is well-formed and generated here, so a failure is a programming error.
        do {
            let key = P256.Signing.PrivateKey()
            let certificateKey = Certificate.PrivateKey(key)
            let name = try DistinguishedName {
                CommonName(commonName)
                OrganizationName("pullsync tests")
            }
            let now = Date()
            let notBefore = now.addingTimeInterval(-3600)
            let notAfter = notBefore.addingTimeInterval(86400)
            let ski = SubjectKeyIdentifier(hash: certificateKey.publicKey)
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                ski
            }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: certificateKey.publicKey,
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions,
                issuerPrivateKey: certificateKey
            )
            let pem = try certificate.serializeAsPEM().pemString
            self.caCertificatePEM = pem + "\n"
            self.caCertificate = try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem)
            self.caKey = key
            self.caName = name
            self.caSubjectKeyIdentifier = ski.keyIdentifier
            self.notValidBefore = notBefore
            self.notValidAfter = notAfter
        } catch {
            fatalError("TestCertificateAuthority: cannot make a CA certificate: \(error)")
        }
    }

    /// Trust exactly this CA (replaces the system roots): for a client that must reach only test servers.
    public var trustRoots: NIOSSLTrustRoots { .certificates([caCertificate]) }

    /// Trust this CA besides the configured roots.
    public var additionalTrustRoots: NIOSSLAdditionalTrustRoots { .certificates([caCertificate]) }

    /// Writes the CA certificate as PEM to `path`, for command-line flags that take a CA file.
    public func writeCACertificate(to path: String) throws {
        try Data(caCertificatePEM.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Issues a server leaf certificate with a fresh P-256 key: SANs for `dnsNames` and `ipAddresses`,
    /// EKU serverAuth, valid as long as the CA.
    public func issue(
        dnsNames: [String],
        ipAddresses: [String] = ["127.0.0.1", "::1"]
    ) throws -> IssuedCertificate {
        let leafKey = P256.Signing.PrivateKey()
        let leafCertificateKey = Certificate.PrivateKey(leafKey)
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            names.append(.ipAddress(.init(contentBytes: try Self.addressBytes(address)[...])))
        }
        let subject = try DistinguishedName {
            CommonName(dnsNames.first ?? ipAddresses.first ?? "pullsync test server")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(names)
            SubjectKeyIdentifier(hash: leafCertificateKey.publicKey)
            AuthorityKeyIdentifier(keyIdentifier: caSubjectKeyIdentifier)
        }
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: leafCertificateKey.publicKey,
            notValidBefore: notValidBefore,
            notValidAfter: notValidAfter,
            issuer: caName,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
        let leafPEM = try leaf.serializeAsPEM().pemString + "\n"
        let chainPEM = leafPEM + caCertificatePEM
        let keyPEM = leafKey.pemRepresentation + "\n"
        return IssuedCertificate(
            certificateChainPEM: chainPEM,
            leafCertificatePEM: leafPEM,
            privateKeyPEM: keyPEM,
            certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8)),
            privateKey: try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        )
    }

    /// Network-order bytes of an IPv4 or IPv6 literal (brackets around IPv6 tolerated).
    private static func addressBytes(_ text: String) throws -> [UInt8] {
        var literal = text
        if literal.hasPrefix("["), literal.hasSuffix("]") {
            literal = String(literal.dropFirst().dropLast())
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, literal, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        throw IssueError.invalidIPAddress(text)
    }
}
