import Testing

/// Every test that needs a real PostgreSQL server, under one server for the whole run (each
/// test takes a database of its own). The outage tests, which stop their server, have their own.
// A time limit per test: a wait on the database that never returns fails its test, naming it,
// instead of holding the whole run until CI gives up.
@Suite("PostgreSQL", .enabled(if: postgresAvailable, Comment(rawValue: PostgresServer.skipMessage)), .postgresServer, .timeLimit(.minutes(3)))
struct PostgresTests {}
