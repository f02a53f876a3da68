import Brook
import BrookLedger
import BrookPipeline
import BrookProtocol

/// Short builders for events and pipeline records.
enum Fx {
    static let topic = "ledger"
    static let group = "g"

    static func deposit(_ id: String, _ account: String, _ amount: Int64, _ currency: String = "USD") -> LedgerEvent {
        LedgerEvent(id: id, account: account, body: .deposit(Cash(amount, currency)))
    }

    static func withdrawal(_ id: String, _ account: String, _ amount: Int64, _ currency: String = "USD") -> LedgerEvent {
        LedgerEvent(id: id, account: account, body: .withdrawal(Cash(amount, currency)))
    }

    static func transfer(_ id: String, _ from: String, _ to: String, _ amount: Int64, _ currency: String = "USD") -> LedgerEvent {
        LedgerEvent(id: id, account: from, body: .transfer(to: to, Cash(amount, currency)))
    }

    static func trade(_ id: String, _ account: String, _ side: TradeSide, _ symbol: String, _ quantity: String, price: Int64, fee: Int64 = 0) -> LedgerEvent {
        LedgerEvent(id: id, account: account, body: .trade(Trade(side: side, symbol: symbol, quantity: Quantity(parsing: quantity)!,
                                                                  price: price, fee: fee, currency: "USD")))
    }

    /// Records for `events` on `partition`, at consecutive offsets from `from`.
    static func records(_ events: [LedgerEvent], partition: Int32 = 0, from: Int64 = 0) -> [PipelineRecord<LedgerEvent>] {
        events.enumerated().map { i, e in
            PipelineRecord(topic: topic, partition: partition, offset: from + Int64(i), timestamp: 0,
                           key: nil, headers: [], value: e)
        }
    }

    static func tp(_ partition: Int32 = 0) -> TopicPartition { TopicPartition(topic: topic, partition: partition) }
}
