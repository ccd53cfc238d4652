import Testing

/// Every test that needs a real PostgreSQL server, under one server for the whole run (each
/// test takes a database of its own). The outage tests, which stop their server, have their own.
@Suite("PostgreSQL", .enabled(if: postgresAvailable, Comment(rawValue: PostgresServer.skipMessage)), .postgresServer)
struct PostgresTests {}
