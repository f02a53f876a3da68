import BrookProtocol
import Logging
import ServiceLifecycle
import Synchronization

/// Observes and evaluates a cluster's groups every `interval`, keeping the latest
/// ``LagReport`` for servers to answer from (`brook lag serve`). A swift-service-lifecycle
/// `Service`: it stops at graceful shutdown. A failed observation is logged and retried at the
/// next interval; the previous report stays.
public final class LagMonitorService: Service, Sendable {
    /// The time between observations.
    public let interval: Duration
    private let observe: @Sendable () async throws -> LagObservation
    private let evaluator: Mutex<LagEvaluator>
    private let latestReport = Mutex<LagReport?>(nil)
    private let logger: Logger

    /// - Parameters:
    ///   - evaluator: The evaluator (cluster name and settings) the observations go to.
    ///   - interval: The time between observations.
    ///   - observe: Takes one observation, usually ``LagCollector/observe()``.
    public init(evaluator: LagEvaluator, interval: Duration, logger: Logger = Logger(label: "brook.lag"),
                observe: @escaping @Sendable () async throws -> LagObservation) {
        self.evaluator = Mutex(evaluator)
        self.interval = interval
        self.logger = logger
        self.observe = observe
    }

    /// The latest evaluation; nil before the first.
    public var latest: LagReport? { latestReport.withLock { $0 } }

    /// Takes one observation and evaluates it.
    @discardableResult
    public func step() async throws -> LagReport {
        let obs = try await observe()
        let report = evaluator.withLock { $0.observe(obs) }
        latestReport.withLock { $0 = report }
        return report
    }

    /// Observes every ``interval`` until graceful shutdown or cancellation.
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.step()
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("lag observation failed", metadata: [BrookLogKey.error: "\(error)"])
                }
                do { try await Task.sleep(for: self.interval) } catch { return }
            }
        }
    }
}
