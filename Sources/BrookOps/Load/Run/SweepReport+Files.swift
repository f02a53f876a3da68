import Foundation

extension SweepReport {
    /// The three files a sweep leaves in `directory` (created if missing).
    public static let fileNames = ["report.md", "report.html", "results.json"]

    /// Writes `report.md`, `report.html` and `results.json` into `directory`.
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(markdown().utf8).write(to: directory.appendingPathComponent("report.md"))
        try Data(html().utf8).write(to: directory.appendingPathComponent("report.html"))
        try json().write(to: directory.appendingPathComponent("results.json"))
    }
}
