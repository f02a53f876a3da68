import BrookProtocol
import Foundation
import Metrics
import Synchronization

/// The consumer's swift-metrics gauges, per partition:
/// - `brook_consumer_lag` — records behind (high watermark − position);
/// - `brook_consumer_time_lag_seconds` — now − timestamp of the last consumed record (0 when
///   caught up);
/// - `brook_consumer_position` — the next offset handed to the application;
/// and `brook_consumer_prefetch_bytes` — decompressed bytes fetched but not yet consumed.
///
/// Dimensions: `group` (when there is one), `topic`, `partition`.
final class ConsumerMetrics: Sendable {
    private struct PartitionGauges {
        let lag: Gauge
        let timeLag: Gauge
        let position: Gauge
    }

    let enabled: Bool
    private let group: String?
    private let factory: any MetricsFactory
    private let gauges = Mutex<[TopicPartition: PartitionGauges]>([:])
    private let prefetch: Gauge?

    init(group: String?, enabled: Bool, factory: any MetricsFactory = MetricsSystem.factory) {
        self.enabled = enabled
        self.group = group
        self.factory = factory
        self.prefetch = enabled
            ? Gauge(label: "brook_consumer_prefetch_bytes", dimensions: group.map { [("group", $0)] } ?? [], factory: factory) : nil
    }

    private func dimensions(_ tp: TopicPartition) -> [(String, String)] {
        var d: [(String, String)] = []
        if let group { d.append(("group", group)) }
        d.append(("topic", tp.topic))
        d.append(("partition", "\(tp.partition)"))
        return d
    }

    func update(_ lags: [TopicPartition: PartitionLag], prefetchBytes: Int, nowMs: Int64) {
        guard enabled else { return }
        prefetch?.record(prefetchBytes)
        let stale = gauges.withLock { g -> [PartitionGauges] in
            var stale: [PartitionGauges] = []
            for tp in g.keys where lags[tp] == nil {
                stale.append(g.removeValue(forKey: tp)!)
            }
            for (tp, lag) in lags {
                let gs: PartitionGauges
                if let existing = g[tp] {
                    gs = existing
                } else {
                    let d = dimensions(tp)
                    gs = PartitionGauges(
                        lag: Gauge(label: "brook_consumer_lag", dimensions: d, factory: factory),
                        timeLag: Gauge(label: "brook_consumer_time_lag_seconds", dimensions: d, factory: factory),
                        position: Gauge(label: "brook_consumer_position", dimensions: d, factory: factory))
                    g[tp] = gs
                }
                if let r = lag.records { gs.lag.record(r) }
                if let t = lag.timeLagMs(now: nowMs) { gs.timeLag.record(Double(t) / 1000) }
                if let p = lag.position { gs.position.record(p) }
            }
            return stale
        }
        for s in stale {
            s.lag.destroy()
            s.timeLag.destroy()
            s.position.destroy()
        }
    }

    func removeAll() {
        guard enabled else { return }
        let all = gauges.withLock { g -> [PartitionGauges] in
            let all = Array(g.values)
            g.removeAll()
            return all
        }
        for s in all {
            s.lag.destroy()
            s.timeLag.destroy()
            s.position.destroy()
        }
        prefetch?.record(0)
    }
}

extension KafkaConsumer {
    func runMetrics() async {
        while !Task.isCancelled {
            updateMetrics()
            do {
                try await Task.sleep(for: configuration.metrics.updateInterval)
            } catch {
                return
            }
        }
    }

    func updateMetrics() {
        let (lags, bytes) = state.withLock { ($0.lag(), $0.bufferedBytes) }
        metrics.update(lags, prefetchBytes: bytes, nowMs: currentTimeMillis())
    }
}
