import BrookBroker
import Foundation
import Logging
import NIOCore
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

    @Test(.timeLimit(.minutes(1)))
    func cancellingTheServerTaskClosesConnectionsItAccepted() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("brook-cancel-test-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = BrokerConfig(dataDirectory: dir)
        config.host = "127.0.0.1"
        config.port = 0
        config.flushPolicy = .os
        var logger = Logger(label: "test.broker")
        logger.logLevel = .error
        let server = BrokerServer(broker: try Broker(config: config, logger: logger), logger: logger)
        let task = Task { try await server.run() }
        let port = try #require(await server.waitUntilListening())
        // Connections the accept loop may not have taken yet when the task is cancelled: they
        // used to be dropped unclosed, which NIO traps on in debug builds.
        var clients: [any Channel] = []
        for _ in 0..<8 {
            clients.append(try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get())
        }
        task.cancel()
        _ = await task.result
        // The server closed every one of them (or will within its two-second grace).
        for c in clients { try await c.closeFuture.get() }
        // And the listener is gone.
        await #expect(throws: (any Error).self) {
            try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aPortInUseFailsTheStartInsteadOfWaiting() async throws {
        let taken = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { taken.close(promise: nil) }
        let port = try #require(taken.localAddress?.port)
        await #expect(throws: (any Error).self) {
            _ = try await EmbeddedBroker.start(.testing) { $0.port = port }
        }
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
