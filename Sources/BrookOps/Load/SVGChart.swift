/// Horizontal bar charts as inline SVG, drawn by Brook so a report needs no network or
/// script: one bar per label, the value printed at its end, and for repeated runs a whisker
/// from the smallest to the largest run, so the noise is visible beside the effect.
public struct SVGBarChart: Sendable {
    /// One labelled value.
    public struct Bar: Sendable {
        /// Left of the bar.
        public var label: String
        /// The bar's length.
        public var value: Double
        /// Smallest and largest run, when repeated.
        public var range: ClosedRange<Double>?
        /// Drawn in the accent colour (the best point).
        public var highlighted: Bool

        /// A bar.
        public init(label: String, value: Double, range: ClosedRange<Double>? = nil, highlighted: Bool = false) {
            (self.label, self.value, self.range, self.highlighted) = (label, value, range, highlighted)
        }
    }

    /// Above the chart.
    public var title: String
    /// Top to bottom.
    public var bars: [Bar]
    /// Pixels.
    public var width = 760
    /// Pixels kept for the labels.
    public var labelWidth = 300
    /// Pixels per bar.
    public var barHeight = 18
    /// Decimals of the printed values.
    public var decimals = 0

    /// A chart of `bars`.
    public init(title: String, bars: [Bar], decimals: Int = 0) {
        self.title = title
        self.bars = bars
        self.decimals = decimals
    }

    /// The `<svg>` element.
    public func render() -> String {
        let top = 28
        let rowH = barHeight + 8
        let height = top + rowH * bars.count + 10
        let plotW = Double(width - labelWidth - 90)
        let maxV = max(bars.map { max($0.value, $0.range?.upperBound ?? 0) }.max() ?? 0, 1e-12)
        func x(_ v: Double) -> Double { Double(labelWidth) + plotW * max(v, 0) / maxV }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escapeXML(title))\">"
        s += "<text x=\"4\" y=\"18\" font-size=\"14\" font-weight=\"bold\">\(escapeXML(title))</text>"
        for (i, b) in bars.enumerated() {
            let y = top + i * rowH
            let w = x(b.value) - Double(labelWidth)
            let fill = b.highlighted ? "#d9822b" : "#3a7bd5"
            s += "<text x=\"\(labelWidth - 6)\" y=\"\(y + barHeight - 5)\" font-size=\"11\" text-anchor=\"end\" font-family=\"monospace\">\(escapeXML(b.label))</text>"
            s += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(fixed(w, 1))\" height=\"\(barHeight)\" fill=\"\(fill)\"/>"
            if let r = b.range {
                let mid = y + barHeight / 2
                s += "<line x1=\"\(fixed(x(r.lowerBound), 1))\" y1=\"\(mid)\" x2=\"\(fixed(x(r.upperBound), 1))\" y2=\"\(mid)\" stroke=\"#222\" stroke-width=\"1.5\"/>"
                for v in [r.lowerBound, r.upperBound] {
                    s += "<line x1=\"\(fixed(x(v), 1))\" y1=\"\(y + 3)\" x2=\"\(fixed(x(v), 1))\" y2=\"\(y + barHeight - 3)\" stroke=\"#222\" stroke-width=\"1.5\"/>"
                }
            }
            let end = max(x(b.value), x(b.range?.upperBound ?? 0))
            s += "<text x=\"\(fixed(end + 4, 1))\" y=\"\(y + barHeight - 5)\" font-size=\"11\">\(fixed(b.value, decimals))</text>"
        }
        return s + "</svg>"
    }
}

/// Escapes text for XML and HTML.
public func escapeXML(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
