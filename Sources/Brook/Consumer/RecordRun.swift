/// The decoded records of one fetched chunk, in a buffer they are moved out of as the
/// application takes them: handing out a record costs no reference counting, and freeing the
/// buffer touches only the records never taken. (An array would copy each record out and then
/// destroy every element again when freed.)
///
/// `@unchecked Sendable`: the decoder task fills a run before queueing it; from then on it is
/// only read and taken from under the consumer's lock.
final class RecordRun: @unchecked Sendable, RandomAccessCollection {
    private var base: UnsafeMutablePointer<ConsumerRecord>
    private var capacity: Int
    /// Records before it were taken.
    private(set) var startIndex = 0
    private(set) var endIndex = 0

    init(capacity: Int) {
        self.capacity = Swift.max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    convenience init(_ records: [ConsumerRecord]) {
        self.init(capacity: records.count)
        for r in records { append(r) }
    }

    deinit {
        (base + startIndex).deinitialize(count: endIndex - startIndex)
        base.deallocate()
    }

    /// A copy of a record not taken yet.
    subscript(position: Int) -> ConsumerRecord {
        precondition(position >= startIndex && position < endIndex, "record index out of range")
        return base[position]
    }

    /// Moves `record` in.
    @inline(__always)
    func append(_ record: consuming ConsumerRecord) {
        if endIndex == capacity {
            // Geometric growth: the capacity given is the batches' record count, so this is rare.
            let bigger = UnsafeMutablePointer<ConsumerRecord>.allocate(capacity: capacity * 2)
            (bigger + startIndex).moveInitialize(from: base + startIndex, count: endIndex - startIndex)
            base.deallocate()
            base = bigger
            capacity *= 2
        }
        (base + endIndex).initialize(to: record)
        endIndex += 1
    }

    /// Moves the first record not taken yet out of the run.
    func takeFirst() -> ConsumerRecord {
        precondition(startIndex < endIndex, "no record left")
        let record = (base + startIndex).move()
        startIndex += 1
        return record
    }

    /// Moves every record not taken yet out, as an array.
    func takeAll() -> [ConsumerRecord] {
        let n = endIndex - startIndex
        guard n > 0 else { return [] }
        let from = base + startIndex
        startIndex = endIndex
        return [ConsumerRecord](unsafeUninitializedCapacity: n) { buffer, count in
            buffer.baseAddress!.moveInitialize(from: from, count: n)
            count = n
        }
    }
}
