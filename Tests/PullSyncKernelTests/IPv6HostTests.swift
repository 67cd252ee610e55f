import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct IPv6HostTests {
    @Test("A bracketed IPv6 literal and its bare form are the same host")
    func bracketsAreIgnored() {
        #expect(HostName.normalize("[::1]") == "::1")
        #expect(AllowedHosts(["[::1]"]).contains("::1"))
        #expect(AllowedHosts(["::1"]).contains("[::1]"))
        #expect(PartnerURL(scheme: "http", host: "[::1]", port: 8080).host == "::1")
    }
}
