public import PullSyncKernel
public import ServiceLifecycle

/// Runs a ``PullDispatcher`` under swift-service-lifecycle: graceful shutdown stops it
/// taking work and gives calls in flight the configured grace period; cancellation stops it at once.
///
/// ```swift
/// let service = PullSyncService(dispatcher: dispatcher)
/// let group = ServiceGroup(services: [service, httpServer], logger: logger)
/// try await group.run()
/// ```
public struct PullSyncService: Service {
    public let dispatcher: PullDispatcher

    public init(dispatcher: PullDispatcher) {
        self.dispatcher = dispatcher
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await dispatcher.run()
        } onGracefulShutdown: {
            dispatcher.beginShutdown()
        }
    }
}
