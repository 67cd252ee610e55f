import Dispatch
import NIOPosix
import PullSync
import PullSyncTesting
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("127.0.0.1", "loopback (127.0.0.0/8)"),
        ("127.9.9.9", "loopback (127.0.0.0/8)"),
        ("10.1.2.3", "private (10.0.0.0/8)"),
        ("172.16.0.1", "private (172.16.0.0/12)"),
        ("172.31.255.255", "private (172.16.0.0/12)"),
        ("192.168.1.1", "private (192.168.0.0/16)"),
        ("169.254.169.254", "link-local (169.254.0.0/16)"),
        ("0.0.0.0", "unspecified (0.0.0.0/8)"),
        ("100.64.0.1", "shared address space (100.64.0.0/10)"),
        ("224.0.0.1", "multicast (224.0.0.0/4)"),
        ("255.255.255.255", "reserved (240.0.0.0/4)"),
        ("198.18.0.1", "benchmarking (198.18.0.0/15)"),
        ("::", "unspecified (::)"),
        ("::1", "loopback (::1)"),
        ("[::1]", "loopback (::1)"),
        ("fd00::1", "unique local (fc00::/7)"),
        ("fe80::1%eth0", "link-local (fe80::/10)"),
        ("ff02::1", "multicast (ff00::/8)"),
        ("::ffff:169.254.169.254", "link-local (169.254.0.0/16)"),
        ("::ffff:127.0.0.1", "loopback (127.0.0.0/8)"),
        ("64:ff9b::a00:1", "NAT64 of private (10.0.0.0/8)"),
        ("2001:db8::1", "documentation (2001:db8::/32)"),
    ])
    func nonPublicAddressesAreNamed(literal: String, range: String) throws {
        let address = try #require(IPAddress(literal))
        #expect(address.nonPublicRange == range)
    }

    @Test(arguments: ["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"])
    func publicAddressesPass(literal: String) throws {
        let address = try #require(IPAddress(literal))
        #expect(address.nonPublicRange == nil)
        #expect(!address.isLoopback)
    }

    @Test(arguments: ["", "localhost", "1.2.3", "256.1.1.1", "::g", "example.com"])
    func notLiterals(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func descriptionRoundTrips() throws {
        #expect(try #require(IPAddress("10.0.0.1")).description == "10.0.0.1")
        for text in ["0.0.0.0", "9.10.99.100", "255.255.255.255", "203.0.113.7", "1.20.199.250"] {
            #expect(try #require(IPAddress(text)).description == text)
        }
        #expect(IPAddress.v4(192, 0, 2, 1).description == "192.0.2.1")
        for text in ["[", "]", "[]", "[1.2.3.4", "%", "[%]"] { #expect(IPAddress(text) == nil) }
        #expect(IPAddress("[1.2.3.4]") == .v4(1, 2, 3, 4))
        #expect(try #require(IPAddress("[0:0::1]")).description == "::1")
        #expect(try #require(IPAddress("2001:DB8:0:0:0:0:0:1")).description == "2001:db8::1")
    }

    @Test func staticResolverAnswersFromItsTableAndFallsBack() async throws {
        let resolver = StaticHostResolver(["Partner.Example.": [try #require(IPAddress("127.0.0.1"))]])
        #expect(try await resolver.resolve(host: "partner.example") == [IPAddress("127.0.0.1")!])
        #expect(try await resolver.resolve(host: "10.0.0.9") == [IPAddress("10.0.0.9")!])
        await #expect(throws: HostResolutionError.self) { try await resolver.resolve(host: "other.example") }
    }

    @Test func systemResolverResolvesLiteralsAndLocalhost() async throws {
        let resolver = SystemHostResolver()
        #expect(try await resolver.resolve(host: "127.0.0.1") == [IPAddress("127.0.0.1")!])
        let localhost = try await resolver.resolve(host: "localhost")
        #expect(!localhost.isEmpty)
        #expect(localhost.allSatisfy { $0.isLoopback })
    }

    @Test("a name lookup doesn't wait behind work queued on NIO's shared thread pool (the SQLite store's queries)")
    func systemResolverKeepsOffTheSharedPool() async throws {
        // Every thread of the shared pool busy until the gate opens, and more work queued behind.
        let gate = DispatchSemaphore(value: 0)
        let blockers = 64
        for _ in 0..<blockers {
            NIOThreadPool.singleton.submit { _ in gate.wait() }
        }
        defer { for _ in 0..<blockers { gate.signal() } }
        // Generous, not a performance assertion: on the shared pool the lookup would wait for the gate.
        let looked = await finishing(within: .seconds(30)) { try await SystemHostResolver().resolve(host: "localhost") }
        let localhost = try #require(try looked?.get(), "the lookup waited behind the shared pool")
        #expect(localhost.allSatisfy { $0.isLoopback })
    }
}

@Suite struct IPv6EmbeddedFormTests {
    @Test(arguments: [
        ("::127.0.0.1", "IPv4-compatible (::/96)"),
        ("::ffff:0:10.0.0.1", "IPv4-translated (::ffff:0:0/96)"),
        ("fec0::1", "site-local (fec0::/10)"),
        ("2002:a00:1::1", "6to4 of private (10.0.0.0/8)"),
        ("2002:7f00:1::1", "6to4 of loopback (127.0.0.0/8)"),
        ("64:ff9b:1::a00:1", "local-use NAT64 (64:ff9b:1::/48)"),
    ])
    func embeddedAndDeprecatedFormsAreNotPublic(literal: String, range: String) throws {
        #expect(try #require(IPAddress(literal)).nonPublicRange == range)
    }

    @Test func sixToFourOfAPublicAddressIsPublic() throws {
        #expect(try #require(IPAddress("2002:808:808::1")).nonPublicRange == nil)
    }
}

/// A resolver that never answers (it gives up only when cancelled), to show the call's deadline covers it.
struct SilentResolver: HostResolver {
    func resolve(host: String) async throws -> [IPAddress] {
        _ = await TestGate().waitUnlessCancelled()
        throw CancellationError()
    }
}

@Suite struct ResolutionDeadlineTests {
    @Test func aSlowNameLookupEndsAtTheCallDeadlineAsATimeout() async throws {
        let transport = HTTPPullTransport(
            configuration: .init(allowLoopback: true, resolver: SilentResolver())
        )
        let request = PullRequest(url: PartnerURL(scheme: "https", host: "slow-dns.partner.test", path: "/pull"))
        // Only the call's 300 ms deadline can end it: a lookup that held the call would never end,
        // which the hang guard turns into a failure.
        let sent = await finishing { await transport.send(request, limits: TransportLimits(timeout: .milliseconds(300))) }
        await transport.shutdown()
        guard case .success(let result)? = sent else {
            Issue.record("the call did not end at its deadline")
            return
        }
        guard case .failure(.timeout) = result else {
            Issue.record("expected a timeout, got \(result)")
            return
        }
    }
}
