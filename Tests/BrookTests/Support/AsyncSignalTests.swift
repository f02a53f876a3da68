@testable import Brook
import Testing

/// The client's one signal: the producer's consuming wait(until:) and the consumer's broadcast
/// wait(since:timeout:).
@Suite struct AsyncSignalTests {
    @Test func aSignalSentWhileNobodyWaitsIsRememberedOnce() async {
        let signal = AsyncSignal()
        signal.signal()
        signal.signal()
        let start = ContinuousClock.now
        await signal.wait(until: nil)  // the remembered signal: returns at once
        #expect(ContinuousClock.now - start < .seconds(1))
        // Both signals were consumed by that wait: the next one waits for its deadline.
        let second = ContinuousClock.now
        await signal.wait(until: .now + .milliseconds(50))
        #expect(ContinuousClock.now - second >= .milliseconds(50))
    }

    @Test func aPastDeadlineReturnsAtOnce() async {
        let signal = AsyncSignal()
        let start = ContinuousClock.now
        await signal.wait(until: .now - .seconds(1))
        await signal.wait(since: signal.generation, timeout: .zero)
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test func signalWakesEveryWaiterOfTheGeneration() async {
        let signal = AsyncSignal()
        let g = signal.generation
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask { await signal.wait(since: g, timeout: .seconds(30)) }
            }
            try? await Task.sleep(for: .milliseconds(20))
            let start = ContinuousClock.now
            signal.signal()
            await group.waitForAll()
            #expect(ContinuousClock.now - start < .seconds(10))
        }
        // A waiter that read an older generation does not wait at all.
        let start = ContinuousClock.now
        await signal.wait(since: g, timeout: .seconds(30))
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test func cancellationEndsAWait() async {
        let signal = AsyncSignal()
        let task = Task { await signal.wait(until: .now + .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(20))
        let start = ContinuousClock.now
        task.cancel()
        await task.value
        #expect(ContinuousClock.now - start < .seconds(10))
    }
}
