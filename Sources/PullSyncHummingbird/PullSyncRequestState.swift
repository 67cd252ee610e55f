import Foundation
public import Hummingbird
public import PullSyncKernel

/// A request context that carries pull sync's view of the request to route handlers. With it,
/// ``PullSyncMiddleware`` fills ``pullSync`` before the handler runs, and a handler gets the
/// request's consented EIDs in one line:
///
/// ```swift
/// struct AppContext: PullSyncRequestContext {
///     var coreContext: CoreRequestContextStorage
///     var pullSync = PullSyncRequestState()
///     init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
/// }
///
/// router.get("/article") { _, context in
///     let eids = await context.pullSync.eids()   // OpenRTB 2.6 user.eids for this browser, now
///     ...
/// }
/// ```
public protocol PullSyncRequestContext: RequestContext {
    /// Pull sync's view of the request; empty until the middleware has run.
    var pullSync: PullSyncRequestState { get set }
}

/// Pull sync's view of one request, as ``PullSyncMiddleware`` worked it out: the browser's EC
/// and the consent it arrived with. Empty on routes the middleware doesn't cover (then
/// ``eids()`` is empty too).
public struct PullSyncRequestState: Sendable {
    private let kernel: PullKernel?
    private let found: FoundEdgeCookie
    /// The request's EC, when it carried a well-formed one or the middleware issued one.
    public var edgeCookie: EdgeCookie? { found.edgeCookie }
    /// The middleware issued ``edgeCookie`` on this request (a new browser: no UIDs yet).
    public let ecIssuedOnThisRequest: Bool
    /// The host's consent decision for the request.
    public let consent: ConsentDecision
    /// The request's consent signals.
    public let consentStrings: ConsentStrings

    /// The state of a request the middleware didn't see.
    public init() {
        self.init(kernel: nil, edgeCookie: .none, issued: false, consent: .denied, strings: ConsentStrings())
    }

    init(
        kernel: PullKernel?,
        edgeCookie: FoundEdgeCookie,
        issued: Bool,
        consent: ConsentDecision,
        strings: ConsentStrings
    ) {
        self.kernel = kernel
        self.found = edgeCookie
        self.ecIssuedOnThisRequest = issued
        self.consent = consent
        self.consentStrings = strings
    }

    /// The OpenRTB 2.6 EIDs this request may carry to an auction: the UIDs learned for its EC,
    /// for the partners whose consent holds under this request's signals (the rules of
    /// `PullKernel.eids(for:consent:strings:)`). At most one store read, none for a returning
    /// browser this node already knows to be fresh, for a new browser, or when consent refuses
    /// every partner. Never fails the page: a store failure gives none (and is logged).
    public func eids() async -> [EID] {
        guard let kernel, let edgeCookie = found.edgeCookie, !ecIssuedOnThisRequest else { return [] }
        return await kernel.eidsForPage(for: edgeCookie, consent: consent, strings: consentStrings)
    }
}

/// A request's EC as the middleware found it.
enum FoundEdgeCookie: Sendable {
    case none
    case parsed(EdgeCookie)
    /// Well formed and still in the request's `Cookie` header, its hash `hashLength` bytes: a
    /// returning browser the fresh-EC memo skipped, whose EC is copied out only if asked for.
    case inHeader(Substring, hashLength: Int)

    init(_ edgeCookie: EdgeCookie?) {
        self = edgeCookie.map(Self.parsed) ?? .none
    }

    var edgeCookie: EdgeCookie? {
        switch self {
        case .none: nil
        case .parsed(let edgeCookie): edgeCookie
        case .inHeader(let value, let hashLength): EdgeCookie(unchecked: String(value), hashLength: hashLength)
        }
    }
}

/// The header form of EIDs that `pullsync serve --eids-header` sends to the origin: the OpenRTB
/// `user.eids` array as compact JSON (keys sorted), base64url-encoded without padding.
public enum EIDsHeader {
    /// The header value for `eids`; `nil` when there are none (the header is then left out).
    public static func value(for eids: [EID]) -> String? {
        guard !eids.isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings and integers can't fail.
        guard let json = try? encoder.encode(eids) else { return nil }
        // On the bytes: `replacingOccurrences` goes through NSString, a tenth of a page's CPU here.
        var base64 = [UInt8](json.base64EncodedData())
        while base64.last == UInt8(ascii: "=") { base64.removeLast() }
        for index in base64.indices {
            if base64[index] == UInt8(ascii: "+") {
                base64[index] = UInt8(ascii: "-")
            } else if base64[index] == UInt8(ascii: "/") {
                base64[index] = UInt8(ascii: "_")
            }
        }
        return String(decoding: base64, as: UTF8.self)
    }

    /// The EIDs in a header value made by ``value(for:)``, for an origin written in Swift.
    ///
    /// - Throws: ``DecodingError`` when the value is not base64url or not an EID array.
    public static func eids(from value: some StringProtocol) throws -> [EID] {
        var base64 = value.utf8.map { byte in
            byte == UInt8(ascii: "-") ? UInt8(ascii: "+") : byte == UInt8(ascii: "_") ? UInt8(ascii: "/") : byte
        }
        base64 += repeatElement(UInt8(ascii: "="), count: (4 - base64.count % 4) % 4)
        guard let json = Data(base64Encoded: Data(base64)) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not base64url"))
        }
        return try JSONDecoder().decode([EID].self, from: json)
    }
}
