import Brook
import Foundation
import Logging
import NIOCore

/// What a sweep measures the producer against: it starts a consuming side per run.
public protocol SweepTarget: Sendable {
    /// Starts consuming `topic` with the point's consumer (and pipeline) settings.
    func start(topic: String, point: SweepPoint, spec: SweepSpec, client: ClientConfiguration) async throws -> any SweepSide
}

/// A running consuming side.
public protocol SweepSide: Sendable {
    /// Record `index` of the run (warm-up included), stamped `stampMicros` for end-to-end latency.
    func record(index: Int, stampMicros: Int64) -> ProducerRecord
    /// Records fully processed so far.
    func processed() -> Int
    /// From now on, end-to-end latencies count (the warm-up's do not).
    func startMeasuring()
    /// p99 of the measured end-to-end latencies, milliseconds.
    func p99Ms() -> Double
    func stop() async
}

/// Runs a ``SweepSpec``: per run a fresh topic, a warm-up, then the measured records;
/// throughput from the first measured send to the last record processed.
public struct SweepRunner: Sendable {
    /// The matrix and workload.
    public var spec: SweepSpec
    /// What consumes the records.
    public var target: any SweepTarget
    /// The cluster to run against.
    public var client: ClientConfiguration
    /// The clients' logger.
    public var logger: Logger
    /// Longest wait for the consuming side to finish a run.
    public var runTimeout: Duration = .seconds(300)

    /// A runner of `spec` against `target` on the cluster of `client`.
    public init(spec: SweepSpec, target: any SweepTarget, client: ClientConfiguration, logger: Logger) {
        self.spec = spec
        self.target = target
        self.client = client
        self.logger = logger
    }

    /// Runs every scheduled run, calling `onProgress` with a line as each completes.
    public func run(title: String, onProgress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> SweepReport {
        let started = ISO8601DateFormatter().string(from: Date())
        let schedule = spec.schedule()
        let points = spec.points
        let dims = spec.dimensions
        let admin = KafkaAdmin(config: client, logger: logger)
        defer { Task { await admin.close() } }
        let sweepId = UUID().uuidString.prefix(8).lowercased()
        let t0 = ProcessStats.monotonicNanos()
        var results: [(SweepRun, SweepMeasurement)] = []
        for (i, run) in schedule.enumerated() {
            let point = points[run.point]
            let topic = "brook-sweep-\(sweepId)-\(run.point)-\(run.repeat)"
            try await admin.createTopics([.init(name: topic, partitions: Int32(spec.partitions), replicationFactor: -1)])
            let m = try await measure(point: point, topic: topic)
            // Each run's topic goes once measured: a long sweep must not fill the broker's disk.
            try? await admin.deleteTopics([topic])
            results.append((run, m))
            onProgress(sweepProgressLine(done: i + 1, total: schedule.count, elapsedSeconds: Double(ProcessStats.monotonicNanos() - t0) / 1e9,
                                         label: point.label(dims), measurement: m))
        }
        return SweepReport(title: title, started: started, spec: spec, runs: results)
    }

    func measure(point: SweepPoint, topic: String) async throws -> SweepMeasurement {
        var pc = ProducerConfiguration(client: client)
        try ClientProperties.apply(producer: point.settings(.producer), to: &pc)
        let producer = try KafkaProducer(configuration: pc, logger: logger)
        let side = try await target.start(topic: topic, point: point, spec: spec, client: client)
        do {
            let throttle = ThroughputThrottle(recordsPerSecond: spec.rate)
            for i in 0..<spec.warmupRecords {
                try await producer.sendAsync(side.record(index: i, stampMicros: ProcessStats.wallMicros()))
            }
            await producer.flush()
            try await waitFor(side, spec.warmupRecords)
            side.startMeasuring()
            ProcessStats.resetPeakRSS()
            let cpu0 = ProcessStats.cpuSeconds()
            let start = ProcessStats.monotonicNanos()
            for i in 0..<spec.records {
                if let wait = throttle.delay(beforeRecord: i, elapsed: .nanoseconds(ProcessStats.monotonicNanos() - start)) {
                    try await Task.sleep(for: wait)
                }
                try await producer.sendAsync(side.record(index: spec.warmupRecords + i, stampMicros: ProcessStats.wallMicros()))
            }
            await producer.flush()
            try await waitFor(side, spec.warmupRecords + spec.records)
            let seconds = Double(ProcessStats.monotonicNanos() - start) / 1e9
            let m = SweepMeasurement(throughput: Double(spec.records) / seconds, p99Ms: side.p99Ms(),
                                     cpuSeconds: ProcessStats.cpuSeconds() - cpu0, peakRSSMiB: Double(ProcessStats.peakRSSKiB()) / 1024)
            await producer.close()
            await side.stop()
            return m
        } catch {
            await producer.close()
            await side.stop()
            throw error
        }
    }

    func waitFor(_ side: any SweepSide, _ n: Int) async throws {
        let deadline = ContinuousClock.now + runTimeout
        while side.processed() < n {
            if ContinuousClock.now > deadline {
                throw LoadTestError.invalid("the consuming side processed \(side.processed()) of \(n) records within \(runTimeout)")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}
