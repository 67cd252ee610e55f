package import Logging
package import PullSyncKernel
import ServiceLifecycle

/// A store's upkeep as a service: deletes expired rows every `interval` while the group runs,
/// and closes the store when the group shuts down (after the services listed after it).
package struct StoreMaintenance: Service {
    private let interval: Duration
    private let logger: Logger
    private let sweep: @Sendable (Timestamp) async throws -> Int
    private let close: @Sendable () async throws -> Void
    private let clock: any WallClock

    /// - Parameters:
    ///   - sweep: deletes what expired before the given time; returns how many rows.
    ///   - close: releases the store's resources, once, at the end.
    package init(
        interval: Duration,
        logger: Logger,
        clock: any WallClock = SystemWallClock(),
        sweep: @escaping @Sendable (Timestamp) async throws -> Int,
        close: @escaping @Sendable () async throws -> Void
    ) {
        self.interval = interval
        self.logger = logger
        self.clock = clock
        self.sweep = sweep
        self.close = close
    }

    package func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
            do {
                let removed = try await sweep(clock.now())
                if removed > 0 { logger.debug("store clean-up", metadata: ["rows_removed": "\(removed)"]) }
            } catch {
                // The store may be down; the next round tries again.
                logger.debug("store clean-up failed", metadata: ["error": "\(error)"])
            }
        }
        do {
            try await close()
        } catch {
            logger.warning("closing the store failed", metadata: ["error": "\(error)"])
        }
    }
}
