import Logging
import ServiceLifecycle

/// The first step of a graceful stop: `/readyz` fails at once, and the listeners keep
/// accepting connections for `grace`, the time Kubernetes endpoints and load balancers take to
/// stop sending new clients. Only then do the services before it in the group begin their own
/// graceful shutdown (the HTTP servers close their listeners and drain).
///
/// Place it last in the service group: the group shuts services down in reverse order, each
/// after the one behind it has returned.
public struct ShutdownGrace: Service {
    let readiness: Readiness
    let grace: Duration
    let logger: Logger

    public init(readiness: Readiness, grace: Duration, logger: Logger) {
        self.readiness = readiness
        self.grace = grace
        self.logger = logger
    }

    public func run() async throws {
        // Wait for the stop signal (or for the group to be cancelled).
        try? await gracefulShutdown()
        guard !Task.isCancelled else { return }
        readiness.stop("shutting down")
        logger.notice("stopping: /readyz now fails; still accepting connections during the grace period", metadata: [
            "grace": "\(grace)",
        ])
        try? await Task.sleep(for: grace)
        logger.notice("grace period over: closing the listeners and draining in-flight responses")
    }
}
