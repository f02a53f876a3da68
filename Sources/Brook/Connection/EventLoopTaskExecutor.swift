import NIOCore

/// Runs a task's jobs on a NIO event loop (as its task executor preference).
///
/// For the consumer's fetcher: a response completes on the connection's event loop, and the
/// fetcher reads its batch headers and sends the next fetch right there. On the global pool it
/// waited for a thread: with two cores, the application's record loop and the decoder can hold
/// both, and every fetch round trip grew by that wait.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}
