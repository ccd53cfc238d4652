/// `ledger:`: the record of every client manifest request (who pulled what, and what it cost).
public struct LedgerConfig: Sendable, Equatable {
    /// How long requests are kept (as hourly roll-ups once they are 25 hours old).
    public var retention: Duration

    public init(retention: Duration = .seconds(30 * 86_400)) {
        self.retention = retention
    }
}
