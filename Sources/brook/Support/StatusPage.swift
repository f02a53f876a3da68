import BrookPipeline
import Foundation

/// The HTML status page `brook up` and `brook ledger run --metrics` serve at `/`.
enum StatusPage {
    static func html(title: String, snapshots: [PipelineSnapshot], lines: [String] = []) -> String {
        let lag = snapshots.reduce(0) { $0 + $1.lagRecords }
        let lagSeconds = snapshots.map(\.lagSeconds).max() ?? 0
        let processed = snapshots.reduce(0) { $0 + $1.processed }
        let dlt = snapshots.reduce(0) { $0 + $1.deadLettered }
        let parked = snapshots.reduce(0) { $0 + $1.parked }
        let quarantined = snapshots.reduce(0) { $0 + $1.quarantinedKeys }
        var rows = ""
        for (w, s) in snapshots.enumerated() {
            for (tp, p) in s.partitions.sorted(by: { $0.key < $1.key }) {
                rows += "<tr><td>\(w)</td><td>\(esc(tp.topic))</td><td>\(tp.partition)</td><td>\(p.lagRecords)</td>"
                    + String(format: "<td>%.1f</td>", p.lagSeconds) + "<td>\(p.paused ? "paused" : "")\(p.fenced ? " fenced" : "")</td></tr>\n"
            }
        }
        return """
            <!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
            <title>\(esc(title))</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}</style></head>
            <body><h1>\(esc(title))</h1>
            \(lines.map { "<p>\(esc($0))</p>" }.joined(separator: "\n"))
            <p>Lag: <b>\(lag)</b> records, <b>\(String(format: "%.1f", lagSeconds))</b> s · records handled (applied, rejected or dead-lettered) by these workers \(processed) ·
            dead-lettered \(dlt) · parked \(parked) · quarantined keys \(quarantined) · <a href="/metrics">/metrics</a></p>
            <table><tr><th>worker</th><th>topic</th><th>partition</th><th>lag (records)</th><th>lag (s)</th><th></th></tr>
            \(rows)</table></body></html>

            """
    }

    private static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
