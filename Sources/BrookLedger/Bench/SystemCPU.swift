import Foundation

/// CPU time of the whole machine (every process: the benchmark, the broker, a PostgreSQL
/// server), from `/proc/stat`, so each side pays for all the work its events cause.
enum SystemCPU {
    /// Busy seconds summed over all cores since boot (nil where `/proc/stat` is missing).
    static func busySeconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return nil }
        return parse(line)
    }

    /// `cpu  user nice system idle iowait irq softirq steal …` → (user+nice+system+irq+softirq+steal) seconds.
    static func parse(_ line: Substring) -> Double? {
        let f = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard f.count >= 7 else { return nil }
        let busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f.count > 7 ? f[7] : 0)
        return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
