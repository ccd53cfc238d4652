import ArgumentParser
import Foundation

extension GatewayClient {
    /// A client for `url`, or exit 1 saying why the URL is unusable (the commands that talk to a
    /// running gateway: `status`, `report`, `warm`).
    static func forCommand(url: String) throws -> GatewayClient {
        do {
            return try GatewayClient(baseURL: url)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// Fetches one JSON document from the gateway at `url` for a command, then closes the
    /// client. With `json`, prints the document as it came and returns nil; otherwise decodes
    /// it with `decode`. Every failure prints one `error:` line and exits 1; a document that
    /// does not decode is named by `path` and said not to be `kind`.
    static func commandDocument<Document>(
        url: String, json: Bool, path: String, kind: String,
        fetch: (GatewayClient) async throws -> Data,
        decode: (Data) throws -> Document
    ) async throws -> Document? {
        let client = try forCommand(url: url)
        let fetched: Result<Data, any Error>
        do {
            fetched = .success(try await fetch(client))
        } catch {
            fetched = .failure(error)
        }
        await client.shutdown()
        let document: Data
        switch fetched {
        case .success(let data): document = data
        case .failure(let error):
            printError("error: \(error)")
            throw ExitCode(1)
        }
        if json {
            let text = String(decoding: document, as: UTF8.self)
            Terminal.standardOutput.write(text.hasSuffix("\n") ? text : text + "\n")
            return nil
        }
        do {
            return try decode(document)
        } catch {
            printError("error: \(url)\(path) is not \(kind): \(error)")
            throw ExitCode(1)
        }
    }
}
