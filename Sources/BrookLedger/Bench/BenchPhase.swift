import Foundation

/// What one phase of load did to a side.
public struct PhaseOutcome: Sendable {
    public var events: Int
    /// The rate asked for (nil: as fast as the trading side could hand events over).
    public var rate: Double?
    /// From the first hand-over to the last (the last durable).
    public var ingestSeconds: Double
    /// Events not yet applied when the last was handed over, and the largest backlog sampled
    /// in the second half of the phase.
    public var backlogAtEnd: Int
    public var backlogSecondHalfMax: Int
    /// From the first hand-over until everything was applied.
    public var totalSeconds: Double
    /// Busy CPU seconds of the whole machine over `totalSeconds`.
    public var cpuSeconds: Double?

    public var ingestPerSecond: Double { Double(events) / max(ingestSeconds, 1e-9) }
    public var appliedPerSecond: Double { Double(events) / max(totalSeconds, 1e-9) }
}

/// When a paced phase counts as sustained: the side kept up with the rate (lag stopped
/// growing) and the trading side could hand events over at that rate. Pure, so it is tested
/// without I/O.
enum SustainedRule {
    /// At most this many seconds of events may be waiting at the end and in the second half.
    static let backlogSeconds = 0.5
    /// The hand-over may take this much longer than planned.
    static let ingestSlack = 1.05

    static func isSustained(_ p: PhaseOutcome) -> Bool {
        guard let rate = p.rate, rate > 0 else { return false }
        let planned = Double(p.events) / rate
        let allowed = max(Int(rate * backlogSeconds), 100)
        return p.ingestSeconds <= planned * ingestSlack + 0.05 && p.backlogAtEnd <= allowed && p.backlogSecondHalfMax <= allowed * 2
    }

    /// The rates to try, highest first: from the flat-out rate down in steps of 15%.
    static func candidates(flatOut: Double, steps: Int = 6) -> [Double] {
        (0..<steps).map { flatOut * pow(0.85, Double($0)) }.filter { $0 >= 1 }
    }
}

extension LedgerBench {
    /// The pacing's resolution.
    static let tick = Duration.milliseconds(1)

    /// Hands `records` to `side` at `rate` per second (nil: flat out, in arrivals of up to
    /// `arrival` events) while its consumers apply them, then waits until all are applied.
    static func phase(_ side: any BenchSide, _ records: ArraySlice<GeneratedRecord>, rate: Double?, arrival: Int = 1000,
                      timeout: Duration = .seconds(600)) async throws -> PhaseOutcome {
        let clock = ContinuousClock()
        let cpu0 = SystemCPU.busySeconds()
        let start = clock.now
        let samples = Task { () -> [(Double, Int)] in
            var out: [(Double, Int)] = []
            while !Task.isCancelled {
                if let b = try? await side.backlog() { out.append(((clock.now - start).seconds, b)) }
                try? await Task.sleep(for: .milliseconds(200))
            }
            return out
        }
        var sent = records.startIndex
        while sent < records.endIndex {
            var upTo = records.endIndex
            if let rate {
                let due = records.startIndex + Int(((clock.now - start).seconds * rate).rounded(.down)) + 1
                if due <= sent {
                    // Trades arriving within one tick are handed over together: one wake-up per
                    // millisecond at most, not one per event (the pacing's own CPU would
                    // otherwise be charged to the side and crowd its threads).
                    let next = start + .seconds(Double(sent - records.startIndex) / rate)
                    try await Task.sleep(until: max(next, clock.now + Self.tick), clock: clock)
                    continue
                }
                upTo = min(due, records.endIndex)
            }
            upTo = min(upTo, sent + arrival)
            try await side.ingest(records[sent..<upTo])
            sent = upTo
        }
        try await side.flush()
        let ingestSeconds = (clock.now - start).seconds
        let backlogAtEnd = try await side.backlog()
        let deadline = clock.now + timeout
        while try await side.backlog() > 0 {
            guard clock.now < deadline else { throw LedgerBenchError(description: "the consumers did not catch up within \(timeout)") }
            try await Task.sleep(for: .milliseconds(5))
        }
        let total = (clock.now - start).seconds
        let cpu1 = SystemCPU.busySeconds()
        samples.cancel()
        let sampled = await samples.value
        let secondHalf = sampled.filter { $0.0 >= ingestSeconds / 2 && $0.0 <= ingestSeconds }.map(\.1).max() ?? backlogAtEnd
        return PhaseOutcome(events: records.count, rate: rate, ingestSeconds: ingestSeconds, backlogAtEnd: backlogAtEnd,
                            backlogSecondHalfMax: secondHalf, totalSeconds: total, cpuSeconds: cpu0.flatMap { a in cpu1.map { $0 - a } })
    }
}
