import BrookLedger
import Testing
import Foundation

/// The two store implementations the shared suites run against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// A store on a brand-new, empty database.
    func makeStore() async throws -> any LedgerStore {
        switch self {
        case .sqlite: try await SQLiteLedgerStore.open(path: Self.tempSQLitePath())
        case .postgres: try await PostgresLedgerStore.open(try await TestPostgres.shared.freshDatabase())
        }
    }

    /// `count` pollers and a store, all on one new database.
    func makePollers(_ count: Int) async throws -> (pollers: [any LedgerPoller], store: any LedgerStore) {
        switch self {
        case .sqlite:
            let path = Self.tempSQLitePath()
            var pollers: [any LedgerPoller] = []
            for _ in 0..<count { pollers.append(try await SQLiteLedgerPoller.open(path: path)) }
            return (pollers, try await SQLiteLedgerStore.open(path: path))
        case .postgres:
            let config = try await TestPostgres.shared.freshDatabase()
            var pollers: [any LedgerPoller] = []
            for _ in 0..<count { pollers.append(try await PostgresLedgerPoller.open(config)) }
            return (pollers, try await PostgresLedgerStore.open(config))
        }
    }

    static func tempSQLitePath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("brook-ledger-\(UUID().uuidString).sqlite").path
    }
}
