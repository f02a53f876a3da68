/// The offsets of one partition handed to the pipeline and which of them are finished, so that
/// only the contiguous finished prefix is committed: a crash never skips a record that a
/// concurrent lane had not finished yet.
///
/// Offsets arrive in ascending order (one fetch after another); they complete in any order.
struct OffsetTracker {
    private var offsets: [Int64] = []
    private var done: [Bool] = []
    /// Record timestamps (ms), for the time lag of the oldest unfinished record.
    private var timestamps: [Int64] = []
    /// Index of the first entry still in `offsets` (entries before it were trimmed).
    private var head = 0
    /// Where the partition continues after everything accepted (skips control records).
    private(set) var acceptedEnd: Int64?

    init(start: Int64? = nil) {
        acceptedEnd = start
    }

    var pendingCount: Int { offsets.count - head }

    mutating func accept(_ batch: [Int64], timestamps ts: [Int64]? = nil, next: Int64) {
        offsets.append(contentsOf: batch)
        timestamps.append(contentsOf: ts ?? Array(repeating: 0, count: batch.count))
        done.append(contentsOf: repeatElement(false, count: batch.count))
        acceptedEnd = max(acceptedEnd ?? next, next)
    }

    mutating func complete(_ offset: Int64) {
        guard let i = index(of: offset) else { return }
        done[i] = true
        while head < offsets.count && done[head] { head += 1 }
        // Trim now and then rather than on every completion (amortised O(1)).
        if head > 1024 && head * 2 > offsets.count {
            offsets.removeFirst(head)
            done.removeFirst(head)
            timestamps.removeFirst(head)
            head = 0
        }
    }

    /// The offset to commit: the first unfinished record, or the end of what was accepted.
    var committable: Int64? {
        head < offsets.count ? offsets[head] : acceptedEnd
    }

    /// Timestamp of the oldest record not finished yet.
    var oldestPendingTimestamp: Int64? {
        head < offsets.count ? timestamps[head] : nil
    }

    private func index(of offset: Int64) -> Int? {
        var lo = head
        var hi = offsets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if offsets[mid] < offset { lo = mid + 1 } else { hi = mid }
        }
        return lo < offsets.count && offsets[lo] == offset ? lo : nil
    }
}
