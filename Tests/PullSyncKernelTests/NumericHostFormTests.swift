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
}
