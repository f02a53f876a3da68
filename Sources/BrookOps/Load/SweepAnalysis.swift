import Foundation

/// The four things a sweep measures, with which direction is better.
public enum SweepMetric: String, Sendable, Codable, CaseIterable {
    case throughput, p99, cpu, rss

    /// The metric's heading in reports.
    public var title: String {
        switch self {
        case .throughput: return "throughput (rec/s)"
        case .p99: return "p99 latency (ms)"
        case .cpu: return "CPU seconds"
        case .rss: return "peak RSS (MiB)"
        }
    }

    /// Whether more is better (throughput) or less (the others).
    public var higherIsBetter: Bool { self == .throughput }

    /// This metric of a measurement.
    public func value(_ m: SweepMeasurement) -> Double {
        switch self {
        case .throughput: return m.throughput
        case .p99: return m.p99Ms
        case .cpu: return m.cpuSeconds
        case .rss: return m.peakRSSMiB
        }
    }
}

/// A finished sweep's numbers and what they mean: per point the median and spread of its
/// repeats; per setting and metric the effect of changing it and whether that effect stands
/// out of the noise; the best point.
///
/// The noise rule: a point's noise on a metric is the spread of its repeats (max − min)
/// relative to their median; the sweep's noise is the median of that over all points. A
/// setting's effect is its main effect, as in a factorial design: per value, the mean of the
/// medians of the points that have it (so the other settings average out; a median over all
/// runs would fall between the modes a strong setting makes), and the spread of those means
/// relative to the mean of all points; an effect no larger than the noise is reported as within
/// the noise. With one repeat there is no spread to judge by, so every
/// effect is reported without a verdict.
public struct SweepAnalysis: Sendable, Codable, Equatable {
    /// One point: its runs, their medians and spreads.
    public struct PointSummary: Sendable, Codable, Equatable {
        /// The point.
        public var point: SweepPoint
        /// Its varied settings as `name=value` pairs.
        public var label: String
        /// Its runs in repeat order.
        public var runs: [SweepMeasurement]
        /// Medians of the runs, per metric.
        public var median: [String: Double]
        /// (max − min) / median of the runs, per metric.
        public var relativeSpread: [String: Double]
    }

    /// One value of a setting and its mean effect.
    public struct Level: Sendable, Codable, Equatable {
        /// The setting's value.
        public var value: String
        /// The mean, over the points with this value, of their medians.
        public var median: Double
    }

    /// How much one setting moved one metric.
    public struct Effect: Sendable, Codable, Equatable {
        /// The setting's id (`producer.linger.ms`).
        public var setting: String
        /// The metric.
        public var metric: SweepMetric
        /// Medians per level, in the order the sweep file gave them.
        public var levels: [Level]
        /// The level that did best on this metric.
        public var bestValue: String
        /// (best − worst level) / mean of all points, ≥ 0.
        public var relativeEffect: Double
        /// The sweep's relative noise on this metric (nil with a single repeat).
        public var noise: Double?
        /// Whether the effect is no larger than the noise.
        public var withinNoise: Bool
    }

    /// Every point, in matrix order.
    public var points: [PointSummary]
    /// Effects per metric, largest first.
    public var effects: [Effect]
    /// The point with the highest median throughput (ties: lower p99).
    public var best: Int?
    /// The sweep's relative noise per metric (absent with one repeat).
    public var noise: [String: Double]

    /// Analyses the measured runs of `spec`.
    public init(spec: SweepSpec, results: [SweepRun: SweepMeasurement]) {
        let dims = spec.dimensions
        let pts = spec.points
        var summaries: [PointSummary] = []
        for p in pts {
            let runs = results.filter { $0.key.point == p.index }.sorted { $0.key.repeat < $1.key.repeat }.map(\.value)
            var med: [String: Double] = [:]
            var spread: [String: Double] = [:]
            for m in SweepMetric.allCases {
                let xs = runs.map(m.value)
                let md = median(xs)
                med[m.rawValue] = md
                if xs.count > 1, md > 0 { spread[m.rawValue] = (xs.max()! - xs.min()!) / md }
            }
            summaries.append(PointSummary(point: p, label: p.label(dims), runs: runs, median: med, relativeSpread: spread))
        }
        points = summaries

        var noise: [String: Double] = [:]
        for m in SweepMetric.allCases {
            let spreads = summaries.compactMap { $0.relativeSpread[m.rawValue] }
            if !spreads.isEmpty { noise[m.rawValue] = median(spreads) }
        }
        self.noise = noise

        var effects: [Effect] = []
        let measured = summaries.filter { !$0.runs.isEmpty }
        for m in SweepMetric.allCases {
            let overall = mean(measured.map { $0.median[m.rawValue]! })
            for d in dims {
                let levels = d.values.map { v in
                    Level(value: v, median: mean(measured.filter { $0.point.values[d.id] == v }.map { $0.median[m.rawValue]! }))
                }
                let meds = levels.map(\.median)
                let rel = overall > 0 ? (meds.max()! - meds.min()!) / overall : 0
                let best = (m.higherIsBetter ? levels.max { $0.median < $1.median } : levels.min { $0.median < $1.median })!
                let n = noise[m.rawValue]
                effects.append(Effect(setting: d.id, metric: m, levels: levels, bestValue: best.value, relativeEffect: rel,
                                      noise: n, withinNoise: n.map { rel <= $0 } ?? false))
            }
        }
        self.effects = effects.sorted {
            $0.metric == $1.metric ? $0.relativeEffect > $1.relativeEffect
                : SweepMetric.allCases.firstIndex(of: $0.metric)! < SweepMetric.allCases.firstIndex(of: $1.metric)!
        }
        best = summaries.filter { !$0.runs.isEmpty }.max { a, b in
            let (ta, tb) = (a.median["throughput"]!, b.median["throughput"]!)
            return ta != tb ? ta < tb : a.median["p99"]! > b.median["p99"]!
        }?.point.index
    }

    /// The effects on one metric, largest first.
    public func effects(on metric: SweepMetric) -> [Effect] { effects.filter { $0.metric == metric } }
}

/// The arithmetic mean, 0 for none.
func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }

/// The median (mean of the middle two for an even count), 0 for none.
func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
