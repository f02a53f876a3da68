import BrookProtocol
import Metrics

/// The broker's metrics, made once with the broker (like `GroupCoordinatorMetrics`): creating a
/// metric looks it up in the registry under a lock, too slow for every request.
///
/// Labels and dimensions are what dashboards query; change them only with the dashboards.
struct BrokerMetrics: Sendable {
    /// Requests decoded, by API (`api` dimension: the API's name).
    let requests: [APIKey: Counter]
    /// Bytes of request frames read, size prefix included.
    let bytesIn = Counter(label: "brook_broker_bytes_in_total")
    /// Bytes of response frames written, size prefix included.
    let bytesOut = Counter(label: "brook_broker_bytes_out_total")
    /// Partitions open, updated when topics or partitions are created or deleted.
    let partitions = Gauge(label: "brook_broker_partitions")
    /// Records appended by Produce (retried duplicates not counted).
    let recordsIn = Counter(label: "brook_broker_records_in_total")
    /// Produce request to response, durability wait included.
    let produceLatency = Timer(label: "brook_broker_produce_latency")
    /// Record bytes returned by Fetch.
    let fetchBytes = Counter(label: "brook_broker_fetch_bytes_total")
    /// Fetch requests that waited for data, request to response.
    let fetchLatency = Timer(label: "brook_broker_fetch_latency")

    init() {
        requests = Dictionary(uniqueKeysWithValues: APIKey.allCases.map {
            ($0, Counter(label: "brook_broker_requests_total", dimensions: [("api", $0.name)]))
        })
    }
}
