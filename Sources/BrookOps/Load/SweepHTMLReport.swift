/// `report.html`: one self-contained page (inline CSS and SVG, no scripts, nothing fetched):
/// the best point, per metric a chart of every point (median bar, whisker over the repeats)
/// and the ranking table of settings.
extension SweepReport {
    /// The page.
    public func html() -> String {
        var h = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(escapeXML(title))</title>"
        h += "<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}"
        h += "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
        h += "th{background:#f3f3f3}.sig{font-weight:bold;color:#a33}.noise{color:#777}code{font-size:12px}</style></head><body>"
        h += "<h1>\(escapeXML(title))</h1><p>Target <b>\(target.rawValue)</b>, \(records) records of \(recordSize) bytes per run, "
        h += "\(partitions) partitions, \(repeats) repeat(s) per point, interleaved; started \(escapeXML(started)).</p>"
        if let b = analysis.best, let p = analysis.points.first(where: { $0.point.index == b }) {
            h += "<p><b>Best point:</b> <code>\(escapeXML(p.label))</code> — \(fixed(p.median["throughput"] ?? 0, 0)) rec/s, "
            h += "p99 \(fixed(p.median["p99"] ?? 0, 2)) ms (medians; highlighted in the charts).</p>"
        }
        for m in SweepMetric.allCases {
            h += "<h2>\(escapeXML(m.title))</h2>"
            let bars = analysis.points.map { p -> SVGBarChart.Bar in
                let xs = p.runs.map(m.value)
                return SVGBarChart.Bar(label: p.label, value: p.median[m.rawValue] ?? 0,
                                       range: xs.count > 1 ? xs.min()!...xs.max()! : nil, highlighted: p.point.index == analysis.best)
            }
            h += SVGBarChart(title: m.title + " per point (median, whisker: min–max of repeats)", bars: bars,
                             decimals: m == .p99 || m == .cpu ? 2 : 0).render()
            let es = analysis.effects(on: m)
            if !es.isEmpty {
                h += "<table><tr><th>rank</th><th>setting</th><th>effect</th><th>best value</th><th>mean per value</th><th>verdict</th></tr>"
                for (i, e) in es.enumerated() {
                    let cls = e.noise == nil ? "" : (e.withinNoise ? "noise" : "sig")
                    let verdict = e.noise == nil ? "no repeats" : (e.withinNoise ? "within noise (±\(Self.pct(e.noise!)))" : "significant (noise ±\(Self.pct(e.noise!)))")
                    let levels = e.levels.map { "\($0.value): \(Self.number($0.median, m))" }.joined(separator: ", ")
                    h += "<tr><td>\(i + 1)</td><td><code>\(escapeXML(e.setting))</code></td><td>\(Self.pct(e.relativeEffect))</td>"
                    h += "<td><code>\(escapeXML(e.bestValue))</code></td><td>\(escapeXML(levels))</td><td class=\"\(cls)\">\(verdict)</td></tr>"
                }
                h += "</table>"
            }
        }
        return h + "</body></html>\n"
    }
}
