import HTTPTypes
import Hummingbird
import PullSyncHummingbird
import Testing

/// `RequestCookies` answers what Hummingbird's `Cookies` answers, cookie by cookie.
@Suite struct RequestCookiesTests {
    static let headerSets: [[String]] = [
        [],
        [""],
        ["ts-ec=abc"],
        ["ts-ec=abc; euconsent-v2=CP1; __gpp=DBA; __gpp_sid=2,6; us_privacy=1YNN"],
        ["a=1;b=2;  c=3;\td=4"],
        ["ts-ec=first; ts-ec=second"],
        ["ts-ec=first", "ts-ec=second"],
        ["other=1", "ts-ec=in-the-second-header"],
        ["noequals; ts-ec=after-a-bare-word"],
        ["ts-ec=a=b=c; x=="],
        ["ts-ec=; empty=;"],
        [";;; ts-ec=x;;"],
        ["ts-ecx=1; xts-ec=2; ts-e=3"],
        ["ts-ec =spaced; ts-ec= value "],
        ["TS-EC=upper; ts-ec=lower"],
        ["ts-ec=\"quoted\"; k=%41%42"],
        ["caf\u{e9}=1; ts-ec=\u{e9}t\u{e9}"],
        ["=nameless; ts-ec=x"],
        ["ts-ec==v; a===; c=1"],
        ["ts-ec=; ts-ec=later"],
        // A publisher's page: many cookies, the ones read among them.
        [(0..<40).map { "c\($0)=v\($0)" }.joined(separator: "; ") + "; ts-ec=deep; k=last", "a=1; d=x"],
    ]
    static let names = ["ts-ec", "euconsent-v2", "__gpp", "__gpp_sid", "us_privacy", "a", "c", "d", "k", "x", "empty", "caf\u{e9}", "", "ts-ec "]

    @Test(arguments: headerSets)
    func sameAnswersAsHummingbird(headers: [String]) {
        let ours = RequestCookies(headers: headers)
        let theirs = Cookies(from: headers)
        for name in Self.names {
            #expect(ours[name].map(String.init) == theirs[name]?.value, "\(name) in \(headers)")
        }
    }

    @Test func readsARequestsCookieHeaders() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: .cookie, value: "a=1"))
        fields.append(HTTPField(name: .cookie, value: "ts-ec=v; a=2"))
        let request = Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "edge", path: "/", headerFields: fields),
            body: RequestBody(buffer: .init())
        )
        let cookies = RequestCookies(request)
        #expect(cookies["a"] == "1")
        #expect(cookies["ts-ec"] == "v")
        #expect(cookies["missing"] == nil)
    }
}
