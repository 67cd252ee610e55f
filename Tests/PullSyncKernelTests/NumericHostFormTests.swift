#if canImport(Glibc)
import Glibc
#endif
import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct NumericHostFormTests {
    @Test(
        "Names that resolvers read as IPv4 addresses are not DNS names",
        arguments: ["0x7f000001", "0x7f.1", "0xa.0.0.1", "2130706433", "127.1", "10.0.0.1", "example.123"]
    )
    func refused(host: String) {
        #expect(!HostName.isValidDNSName(host))
    }

    @Test(
        "Ordinary names stay valid",
        arguments: ["acme.example", "x0a.example", "0x.example", "a1.b2.c3", "localhost"]
    )
    func accepted(host: String) {
        #expect(HostName.isValidDNSName(host))
    }

    @Test(
        "The IPv4 grammar: each form, its byte limits and what ends it",
        arguments: [
            ("0x7f000001", true), ("0X7F.1", true), ("017700000001", true), ("127.1", true),
            ("127.0.1", true), ("1.2.3.4", true), ("0", true), ("4294967295", true),
            ("4294967296", false), ("0x100000000", false), ("1.16777215", true), ("1.16777216", false),
            ("1.2.65535", true), ("1.2.65536", false), ("1.2.3.255", true), ("1.2.3.256", false),
            ("256.1", false), ("1.2.3.4.5", false), ("08", false), ("0x", false), ("0x.1", false),
            ("1.", false), (".1", false), ("1..2", false), ("", false), ("1.2.3.4 x", true),
            ("1.2.3.4x", false), ("a.1", false), ("1.a", false), ("-1", false),
        ]
    )
    func grammar(text: String, reads: Bool) {
        #expect(HostName.readsAsIPv4(text) == reads)
    }

    #if canImport(Glibc)
    /// The kernel writes the grammar out so that it needs no C library; glibc's `inet_aton`,
    /// which the resolver uses, is the reference.
    @Test("Whether a text reads as an IPv4 address agrees with glibc's inet_aton on 50,000 texts")
    func agreesWithInetAton() {
        let random = SeededRandomSource(seed: 4)
        let alphabet = Array("0123456789abcdefxX. -z")
        var read = 0
        for _ in 0..<50_000 {
            // Mostly digits and dots, so that a good share of the texts are addresses.
            let length = 1 + Int(random.next() % 14)
            let text = String((0..<length).map { _ in
                random.next() % 3 == 0 ? alphabet[Int(random.next() % UInt64(alphabet.count))]
                    : (random.next() % 4 == 0 ? "." : alphabet[Int(random.next() % 10)])
            })
            var address = in_addr()
            let expected = inet_aton(text, &address) != 0
            if expected { read += 1 }
            #expect(HostName.readsAsIPv4(text) == expected, "\(text)")
        }
        // Both answers well represented, or the comparison proves little.
        #expect(read > 5_000 && read < 45_000)
    }
    #endif
}
