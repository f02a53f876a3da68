import BrookProtocol
import Brook

/// The balance and position rows of the accounts a stream store applied recently, kept in one
/// long-lived ``LedgerBook`` between its transactions so a batch does not read them back from
/// the database, and changed in place by each batch. No I/O.
///
/// Why it is safe, in two layers:
/// - **Ownership.** Records are keyed by account, so an account's events come from one
///   partition, and only the member that owns a partition applies it (the offset fencing check).
///   An account is cached with the partition its events came from, and each partition with the
///   stored offset the cache's last committed transaction left (`next`). A batch whose expected
///   offset is that `next` proves nobody else applied the partition since; any other expected
///   offset (another member's work, a gap) empties the cache. An account first seen in another
///   partition is read again.
/// - **Verification.** Ownership can be broken from outside (a producer with another
///   partitioner puts one account in two partitions; someone edits rows by hand), so a store
///   still checks every cached value it relied on inside the transaction: written rows by
///   compare-and-set on their old value (``LedgerBook/cashBefore``), rows only read by rejected
///   events by reading them. A mismatch rolls the transaction back and runs it again from the
///   database, with the cache emptied.
///
/// The cache is changed only by a transaction that then commits: a store moves it out before
/// the transaction and puts it back after the commit (any failure leaves it empty).
///
/// Memory stays bounded: past ``capacity`` accounts the cache empties (a miss costs a read).
struct LedgerBookCache: Sendable {
    /// The cached accounts' rows (absent rows are zero, as in any book).
    private(set) var book = LedgerBook()
    /// Accounts whose rows are all in ``book``, with the partition their events came from.
    private var owner: [String: TopicPartition] = [:]
    /// Per partition, the stored offset after the last committed transaction.
    private var next: [TopicPartition: Int64] = [:]
    /// The most accounts kept.
    let capacity: Int

    init(capacity: Int = 50_000) { self.capacity = max(capacity, 1) }

    /// Accounts cached.
    var accountCount: Int { owner.count }

    /// Checks a transaction's offset moves against what the cache last committed: any partition
    /// that does not start where it ended empties the cache.
    mutating func begin(_ moves: some Sequence<OffsetMove>) {
        for m in moves {
            if let n = next[m.partition], n != m.expected { return removeAll() }
        }
    }

    /// Whether `account`'s rows are cached for events from `partition`.
    func holds(_ account: String, from partition: TopicPartition) -> Bool {
        owner[account] == partition
    }

    /// Takes the book out for a batch to change in place, with `rows` just read from the
    /// database (the accounts ``holds(_:from:)`` did not have) merged in.
    mutating func takeBook(merging rows: LedgerBook) -> LedgerBook {
        // No changes to forget: `committed` stored the book with its changes forgotten.
        var taken = book
        book = LedgerBook()
        taken.merge(rows)
        return taken
    }

    /// After the transaction committed: `book` (its changes stored) is the cache's again, its
    /// partitions' stored offsets moved to `moves`' `next`, and `accounts` (each with the
    /// partition its events came from) are held.
    mutating func committed(book: LedgerBook, moves: some Sequence<OffsetMove>, accounts: some Sequence<(key: String, value: TopicPartition)>) {
        self.book = book
        self.book.forgetChanges()
        for m in moves { next[m.partition] = m.next }
        for (account, partition) in accounts { owner[account] = partition }
        if owner.count > capacity { removeAll() }
    }

    /// Forgets everything (a failed or unverifiable transaction, or too many accounts).
    mutating func removeAll() {
        book = LedgerBook()
        owner.removeAll()
        next.removeAll()
    }
}
