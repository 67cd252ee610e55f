public import HummingbirdCore
import PullSync
import Synchronization

/// Where ``PullSyncMiddleware`` leaves a request's hand-over, to run once the whole response has
/// been written: bound for each request by the responder of
/// `HTTPServerBuilder.pullSyncHTTP1(configuration:)`.
///
/// Without it the middleware wraps the response body to learn when it has been written, and
/// Hummingbird then writes the head, the body and the end separately; with it, a page made of
/// one buffer goes out in one write, as it would without pull sync.
final class AfterResponse: Sendable {
    /// What the middleware left: the gate's inputs, or its decision if it was made before the page.
    struct Pending: Sendable {
        var dispatcher: PullDispatcher
        var request: OrganicRequest
        var facts: GateFacts
        var decided: PreparedSubmission?

        /// Runs the gate if it hasn't run yet, and hands the request over if the gate lets it
        /// through. Never waits; the dispatcher records an issued EC's root entry itself.
        func handOver() {
            let prepared = decided ?? dispatcher.prepare(request, facts: facts)
            if prepared.needsHandOver { prepared.handOver() }
        }
    }

    @TaskLocal static var current: AfterResponse?

    private let pending = Mutex<Pending?>(nil)

    /// Keeps `work` for ``run()`` (a second call replaces the first: one hand-over per request).
    func hold(_ work: Pending) {
        pending.withLock { $0 = work }
    }

    /// Hands over what the middleware left, if anything (once).
    func run() {
        pending.withLock { $0.take() }?.handOver()
    }

    /// `responder`, with pull sync's hand-overs run once it has written each response (whether or
    /// not the write succeeded: the page was served either way).
    static func handingOver(
        after responder: @escaping HTTPChannelHandler.Responder
    ) -> HTTPChannelHandler.Responder {
        { request, writer, channel in
            let slot = AfterResponse()
            defer { slot.run() }
            // The writer can't be captured to be consumed; an optional can be emptied instead.
            var writer = Optional(writer)
            try await $current.withValue(slot) {
                try await responder(request, writer.take()!, channel)
            }
        }
    }
}

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1.1 server (`.http1(configuration:)`)
    /// whose responder runs ``PullSyncMiddleware``'s hand-over once each response has been
    /// written, so that the page is written exactly as without pull sync (a single-buffer page in
    /// one write).
    ///
    /// ```swift
    /// let app = Application(router: router, server: .pullSyncHTTP1(), services: [pullSync])
    /// ```
    ///
    /// With any other server the middleware works the same, but learns that the response has been
    /// written by wrapping its body, which makes Hummingbird write the head, the body and the end
    /// of such pages separately.
    ///
    /// - Parameter configuration: the HTTP/1.1 channel's configuration, as for `.http1`.
    public static func pullSyncHTTP1(configuration: HTTP1Channel.Configuration = .init()) -> HTTPServerBuilder {
        .init { responder in
            HTTP1Channel(responder: AfterResponse.handingOver(after: responder), configuration: configuration)
        }
    }
}
