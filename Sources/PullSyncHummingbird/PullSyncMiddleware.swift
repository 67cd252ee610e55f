public import Hummingbird
public import Logging
public import PullSync

/// Adds pull sync to a Hummingbird application in one line:
///
/// ```swift
/// router.add(middleware: PullSyncMiddleware(dispatcher: dispatcher, graph: graph, issuer: issuer))
/// ```
///
/// For each organic request (a route the kernel's `RouteFilter` doesn't exclude) it reads the
/// EC cookie (or, with consent and no valid cookie, issues one and sets it), takes the
/// consent decision from a ``ConsentSource``, lets the response go, and only once the response
/// body has been written hands the request to the dispatcher, which never waits. The response
/// is never delayed, failed or changed by pull sync, except for the `Set-Cookie` of a new EC.
public struct PullSyncMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Cookie settings for issued ECs.
    public struct CookieOptions: Sendable {
        /// The cookie's name. Default `ts-ec`.
        public var name: String
        /// Default one year.
        public var maxAge: Int
        /// Set when the service is reached over HTTPS. Default `false`.
        public var secure: Bool
        public var domain: String?

        public init(name: String = "ts-ec", maxAge: Int = 365 * 24 * 3600, secure: Bool = false, domain: String? = nil)
        {
            self.name = name
            self.maxAge = maxAge
            self.secure = secure
            self.domain = domain
        }
    }

    private let dispatcher: PullDispatcher
    private let graph: any IdentityGraph
    private let issuer: EdgeCookieIssuer?
    private let consentSource: any ConsentSource
    private let clientIP: ClientIPSource
    private let cookie: CookieOptions
    private let clock: any WallClock
    private let logger: Logger

    /// - Parameters:
    ///   - dispatcher: receives organic requests; its kernel's configuration decides routes and EC format.
    ///   - graph: where an issued EC's root entry is recorded (the kernel's graph).
    ///   - issuer: issues ECs to consenting browsers without one; `nil` never issues.
    ///   - consent: the consent decision per request. Default: `Sec-GPC` and `ts-consent`.
    ///   - clientIP: where the browser's IP comes from. Default: the socket peer.
    public init(
        dispatcher: PullDispatcher,
        graph: any IdentityGraph,
        issuer: EdgeCookieIssuer?,
        consent: any ConsentSource = StandardConsentSource(),
        clientIP: ClientIPSource = .socketPeer,
        cookie: CookieOptions = CookieOptions(),
        clock: any WallClock = SystemWallClock(),
        logger: Logger = Logger(label: "pullsync.middleware", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.dispatcher = dispatcher
        self.graph = graph
        self.issuer = issuer
        self.consentSource = consent
        self.clientIP = clientIP
        self.cookie = cookie
        self.clock = clock
        self.logger = logger
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let configuration = dispatcher.kernel.configuration
        guard configuration.routes.isOrganic(request.uri.path) else {
            return try await next(request, context)
        }
        let (consent, strings) = consentSource.consent(for: request)
        let ip = clientIP.clientIP(of: request, context: context)
        var edgeCookie = request.cookies[cookie.name]?.value
        var issued: EdgeCookie?
        if edgeCookie.flatMap(configuration.edgeCookieFormat.parse) == nil, consent.granted, let issuer, let ip {
            let value = issuer.issue(clientIP: ip)
            issued = configuration.edgeCookieFormat.parse(value)
            edgeCookie = value
        }

        var response = try await next(request, context)

        if let issued {
            response.setCookie(
                Cookie(
                    name: cookie.name,
                    value: issued.value,
                    maxAge: cookie.maxAge,
                    domain: cookie.domain,
                    path: "/",
                    secure: cookie.secure,
                    httpOnly: true,
                    sameSite: .lax
                )
            )
        }
        let organic = OrganicRequest(
            path: request.uri.path,
            edgeCookie: edgeCookie,
            ecIssuedOnThisRequest: issued != nil,
            consent: consent,
            consentStrings: strings,
            clientIP: ip
        )
        let issuedCookie = issued
        let dispatcher = self.dispatcher
        let graph = self.graph
        let clock = self.clock
        let logger = self.logger
        // Hand over only once the body has been written: nothing here can delay or fail it.
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            // Runs whether or not the write succeeded (a client that went away still viewed the page).
            let written: Result<Void, any Error>
            do {
                try await body.write(writer)
                written = .success(())
            } catch {
                written = .failure(error)
            }
            await Self.afterResponse(
                organic,
                issued: issuedCookie,
                dispatcher: dispatcher,
                graph: graph,
                clock: clock,
                logger: logger
            )
            try written.get()
        }
        return response
    }

    private static func afterResponse(
        _ organic: OrganicRequest,
        issued: EdgeCookie?,
        dispatcher: PullDispatcher,
        graph: any IdentityGraph,
        clock: any WallClock,
        logger: Logger
    ) async {
        // Record an issued EC even when the queue turns the pull work away, so the browser's
        // next request is known.
        if let issued {
            do {
                _ = try await graph.createRoot(for: issued, at: clock.now())
            } catch {
                logger.warning("could not record an issued EC", metadata: ["error": "\(error)"])
            }
        }
        dispatcher.submit(organic)
    }
}
