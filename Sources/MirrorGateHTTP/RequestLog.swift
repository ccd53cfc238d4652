import Logging

/// One log line per request: what was asked, which upstream served it (or `cache`), and how.
struct RequestLog {
    var method: String
    var path: String
    var registry: String?
    var repository: String?
    var reference: String?
    var digest: String?
    var upstream: String?
    var skipped: String?
    var status: Int = 0
    var error: String?
    var duration: Duration = .zero

    func emit(to logger: Logger) {
        var metadata: Logger.Metadata = [
            "method": "\(method)", "status": "\(status)",
            "ms": "\(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)",
        ]
        if let registry { metadata["registry"] = "\(registry)" }
        if let repository { metadata["repository"] = "\(repository)" }
        if let reference { metadata["reference"] = "\(reference)" }
        if let digest { metadata["digest"] = "\(digest)" }
        if let upstream { metadata["served_by"] = "\(upstream)" }
        if let skipped { metadata["skipped"] = "\(skipped)" }
        if let error { metadata["error"] = "\(error)" }
        if registry == nil { metadata["path"] = "\(path.prefix(200))" }
        logger.info("request", metadata: metadata)
    }
}
