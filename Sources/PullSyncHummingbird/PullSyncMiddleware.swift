import HTTPTypes
public import Hummingbird
public import PullSync

/// Adds pull sync to a Hummingbird application in one line:
///
/// ```swift
/// router.add(middleware: PullSyncMiddleware(pullSync))
/// ```
///
/// For each organic request (a route the kernel's `RouteFilter` doesn't exclude) it reads the
/// EC cookie (or, with consent and no valid cookie, issues one and sets it), takes the
/// consent decision from a ``ConsentSource``, and runs the dispatcher's gate
/// (``PullDispatcher/prepare(_:)``, a few lookups; a returning browser's EC is looked up in the
/// fresh-EC memo in place, in the `Cookie` header). A request the gate lets through is handed
/// to the dispatcher, which never waits, only once the response has been written; one it
/// skips (say, a returning browser whose UIDs are all fresh) leaves the response exactly as the
/// route made it. The response is never delayed, failed or changed by pull sync, except for the
/// `Set-Cookie` of a new EC.
///
/// Serve the application with `HTTPServerBuilder.pullSyncHTTP1(configuration:)`, whose responder
/// runs the hand-over after each response. With another server the middleware wraps the body of
/// a response it hands over after, and Hummingbird then writes that page in three pieces instead
/// of one.
///
/// With a context that conforms to ``PullSyncRequestContext``, it also tells the route handler
/// what it found (``PullSyncRequestState``: the EC, the consent, and the request's EIDs).
public struct PullSyncMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Cookie settings for issued ECs.
    public struct CookieOptions: Sendable {
        /// The cookie's name. Default `ts-ec`.
        public var name: String
        /// The cookie's `Max-Age`, in seconds. Default one year.
        public var maxAge: Int
        /// Set when the service is reached over HTTPS. Default `false`.
        public var secure: Bool
        /// The cookie's `Domain` attribute; `nil` (the default) for a host-only cookie.
        public var domain: String?

        /// Creates cookie settings; every default is the one documented on its property.
        public init(name: String = "ts-ec", maxAge: Int = 365 * 24 * 3600, secure: Bool = false, domain: String? = nil)
        {
            self.name = name
            self.maxAge = maxAge
            self.secure = secure
            self.domain = domain
        }
    }

    private let dispatcher: PullDispatcher
    private let issuer: EdgeCookieIssuer?
    private let consentSource: any ConsentSource
    private let clientIP: ClientIPSource.Reader
    private let cookie: CookieOptions
    /// What follows `name=value` in an issued EC's `Set-Cookie` (`; Max-Age=…; Path=/; HttpOnly;
    /// SameSite=Lax`), written by Hummingbird's `Cookie` once: a `Cookie` per page view (its
    /// property table and description) set through `headers[values:]` (which copies every value
    /// out and back) cost nine allocations.
    private let cookieAttributes: String
    /// Hands the request's state to a ``PullSyncRequestContext``; `nil` for other contexts.
    private let attach: (@Sendable (inout Context, PullSyncRequestState) -> Void)?

    /// - Parameters:
    ///   - pullSync: receives organic requests; its kernel's configuration decides routes and EC
    ///     format, and ECs are issued with its EC secret.
    ///   - consent: the consent signals per request. Default: the standard cookies and headers
    ///     (`ts-consent`, `Sec-GPC`, `euconsent-v2`, `__gpp`, `__gpp_sid`, `us_privacy`).
    ///   - clientIP: where the browser's IP comes from. Default: the socket peer.
    public init(
        _ pullSync: PullSyncService,
        consent: any ConsentSource = StandardConsentSource(),
        clientIP: ClientIPSource = .socketPeer,
        cookie: CookieOptions = CookieOptions()
    ) {
        self.init(
            dispatcher: pullSync.dispatcher,
            issuer: EdgeCookieIssuer(secret: pullSync.ecSecret),
            consent: consent,
            clientIP: clientIP,
            cookie: cookie
        )
    }

    /// A middleware on a dispatcher of your own (tests, or a kernel built by hand).
    ///
    /// - Parameters:
    ///   - dispatcher: receives organic requests; its kernel's configuration decides routes and EC format.
    ///   - issuer: issues ECs to consenting browsers without one; `nil` never issues.
    ///   - consent: the consent signals per request. Default: the standard cookies and headers
    ///     (`ts-consent`, `Sec-GPC`, `euconsent-v2`, `__gpp`, `__gpp_sid`, `us_privacy`).
    ///   - clientIP: where the browser's IP comes from. Default: the socket peer.
    public init(
        dispatcher: PullDispatcher,
        issuer: EdgeCookieIssuer?,
        consent: any ConsentSource = StandardConsentSource(),
        clientIP: ClientIPSource = .socketPeer,
        cookie: CookieOptions = CookieOptions()
    ) {
        self.init(
            dispatcher: dispatcher,
            issuer: issuer,
            consent: consent,
            clientIP: clientIP,
            cookie: cookie,
            attach: nil
        )
    }

    fileprivate init(
        dispatcher: PullDispatcher,
        issuer: EdgeCookieIssuer?,
        consent: any ConsentSource,
        clientIP: ClientIPSource,
        cookie: CookieOptions,
        attach: (@Sendable (inout Context, PullSyncRequestState) -> Void)?
    ) {
        self.dispatcher = dispatcher
        self.issuer = issuer
        self.consentSource = consent
        self.clientIP = ClientIPSource.Reader(clientIP)
        self.cookie = cookie
        let template = Cookie(
            name: cookie.name,
            value: "",
            maxAge: cookie.maxAge,
            domain: cookie.domain,
            path: "/",
            secure: cookie.secure,
            httpOnly: true,
            sameSite: .lax
        )
        self.cookieAttributes = String(template.description.dropFirst(cookie.name.count + 1))
        self.attach = attach
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        // Fields are read from the kernel one at a time: a copy of its whole configuration would
        // retain and release every reference in it on every page view.
        let kernel = dispatcher.kernel
        // Built anew on every read (Hummingbird keeps the URI's bytes): read once.
        let path = request.uri.path
        guard kernel.isOrganic(path) else {
            return try await next(request, context)
        }
        let cookies = RequestCookies(request)
        let (consent, strings) = consentSource.consent(for: request, cookies: cookies)
        let raw = cookies[cookie.name]
        let hashLength = raw.flatMap(kernel.ecHashLength(of:))
        if let raw, let hashLength {
            // The gate's first steps, on the EC in place: a returning browser for whom nothing can
            // be called (the most common page view) costs a hash lookup, and nothing is made for
            // it, queued or decoded.
            let ecHash = raw.utf8.prefix(hashLength)
            if dispatcher.skipsFreshMemo(kernel, ecHash: Substring(ecHash), consent: consent, strings: strings) {
                guard let attach else { return try await next(request, context) }
                var context = context
                let state = PullSyncRequestState(
                    kernel: kernel,
                    edgeCookie: .inHeader(raw, hashLength: hashLength),
                    issued: false,
                    consent: consent,
                    strings: strings
                )
                attach(&context, state)
                return try await next(request, context)
            }
        }
        var edgeCookie = raw.map(String.init)
        // What is worked out here is handed to the gate, which then doesn't work it out again
        // (the memo included, when it was asked above; an EC issued below is still to be asked).
        var facts = GateFacts(
            edgeCookie: edgeCookie.flatMap { value in hashLength.map { EdgeCookie(unchecked: value, hashLength: $0) } },
            freshMemoConsulted: hashLength != nil
        )
        // No EC for a browser that denies consent or opts out (GPC, US opt-outs), nor while its
        // consent strings can't be read.
        var mayIssue = false
        // The EC first: comparing the optional issuer with nil copies it (a retain and a
        // release), and a returning browser never needs it.
        if facts.edgeCookie == nil, issuer != nil {
            let denial = kernel.consent.requestDenial(strings, host: consent)
            facts.denial = .some(denial)
            mayIssue = denial == nil
        }
        // The client IP is only worked out when an EC is issued or partners are sent it.
        let ip = mayIssue || kernel.configuration.forwardClientIP ? clientIP.clientIP(of: request, context: context) : nil
        var issued: EdgeCookie?
        if mayIssue, let issuer, let ip {
            let value = issuer.issue(clientIP: ip)
            issued = kernel.configuration.edgeCookieFormat.parse(value)
            edgeCookie = value
            facts.edgeCookie = issued
        }

        var context = context
        attach?(
            &context,
            PullSyncRequestState(
                kernel: kernel,
                edgeCookie: FoundEdgeCookie(facts.edgeCookie),
                issued: issued != nil,
                consent: consent,
                strings: strings
            )
        )
        var response = try await next(request, context)

        if let issued {
            var line = ""
            line.reserveCapacity(cookie.name.utf8.count + 1 + issued.value.utf8.count + cookieAttributes.utf8.count)
            line += cookie.name
            line += "="
            line += issued.value
            line += cookieAttributes
            response.headers.append(HTTPField(name: .setCookie, value: line))
        }
        let organic = OrganicRequest(
            path: path,
            edgeCookie: edgeCookie,
            ecIssuedOnThisRequest: issued != nil,
            consent: consent,
            consentStrings: strings,
            clientIP: ip
        )
        // Without an EC the gate can only skip: it decides now, and the response stays as the
        // route made it (Hummingbird writes a single-buffer page in one system call). With one,
        // the gate runs once the response has been written: nothing of pull sync's decides the
        // response, so none of it is on the page's time (a new browser's p50 with slow partners,
        // measure 3 in BENCHMARKS.md, was this middleware's own work). But while the queue is
        // full (overload) the gate would only drop it: deciding now costs less than waiting
        // (on another server than `.pullSyncHTTP1()`, less than the wrapped body's separate
        // writes: measure 6).
        var decided: PreparedSubmission?
        if facts.edgeCookie == nil || dispatcher.isQueueFull {
            let prepared = dispatcher.prepare(organic, facts: facts)
            guard prepared.needsHandOver else { return response }
            decided = prepared
        }
        let pending = AfterResponse.Pending(dispatcher: dispatcher, request: organic, facts: facts, decided: decided)
        // Served by `.pullSyncHTTP1()`: its responder hands over once it has written the response,
        // which stays as the route made it.
        if let afterResponse = AfterResponse.current {
            afterResponse.hold(pending)
            return response
        }
        // Any other server: the body, wrapped, says when it has been written. Whether or not the
        // write succeeded, the page was served.
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            let written: Result<Void, any Error>
            do {
                try await body.write(writer)
                written = .success(())
            } catch {
                written = .failure(error)
            }
            pending.handOver()
            try written.get()
        }
        return response
    }

}

extension PullSyncMiddleware where Context: PullSyncRequestContext {
    /// The one-line middleware of ``init(_:consent:clientIP:cookie:)``, which also fills the
    /// context's ``PullSyncRequestContext/pullSync`` before the route handler runs.
    public init(
        _ pullSync: PullSyncService,
        consent: any ConsentSource = StandardConsentSource(),
        clientIP: ClientIPSource = .socketPeer,
        cookie: CookieOptions = CookieOptions()
    ) {
        self.init(
            dispatcher: pullSync.dispatcher,
            issuer: EdgeCookieIssuer(secret: pullSync.ecSecret),
            consent: consent,
            clientIP: clientIP,
            cookie: cookie,
            attach: { context, state in context.pullSync = state }
        )
    }

    /// The middleware of ``init(dispatcher:issuer:consent:clientIP:cookie:)``, which also fills the
    /// context's ``PullSyncRequestContext/pullSync`` before the route handler runs.
    public init(
        dispatcher: PullDispatcher,
        issuer: EdgeCookieIssuer?,
        consent: any ConsentSource = StandardConsentSource(),
        clientIP: ClientIPSource = .socketPeer,
        cookie: CookieOptions = CookieOptions()
    ) {
        self.init(
            dispatcher: dispatcher,
            issuer: issuer,
            consent: consent,
            clientIP: clientIP,
            cookie: cookie,
            attach: { context, state in context.pullSync = state }
        )
    }
}
