import BrookBroker
import Foundation
import NIOPosix
import Testing

@Suite struct EmbeddedBrokerTests {
    @Test func servesOnAnEphemeralPortAndRemovesItsTemporaryData() async throws {
        let broker = try await EmbeddedBroker.start(.testing)
        #expect(broker.port > 0)
        #expect(broker.bootstrap == "127.0.0.1:\(broker.port)")
        let dir = broker.broker.config.dataDirectory
        #expect(FileManager.default.fileExists(atPath: dir.path))
        // Something listens there.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: broker.port).get()
        try await channel.close()
        await broker.stop()
        #expect(!FileManager.default.fileExists(atPath: dir.path))
    }

    @Test func keepsAGivenDataDirectoryAcrossRestarts() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brook-embedded-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try await EmbeddedBroker.start(.testing, dataDirectory: dir)
        await first.stop()
        #expect(FileManager.default.fileExists(atPath: dir.path))
        let second = try await EmbeddedBroker.start(.testing, dataDirectory: dir)
        #expect(second.port > 0)
        await second.stop()
        #expect(FileManager.default.fileExists(atPath: dir.path))
    }
}
