/// Local `Accept` negotiation for a stored manifest, as distribution's manifest handler does it
/// (`registry/handlers/manifests.go`): the header is split on commas, parameters such as `q=` are
/// ignored, an OCI manifest or index the client did not accept is "not found", and a Docker
/// manifest list requested by tag by a client that does not accept lists is replaced by its
/// `linux/amd64` child.
public struct ManifestNegotiation: Sendable {
    /// Media types the client listed (lowercased, parameters stripped).
    public let accepted: Set<String>

    public init(acceptHeaders: [String]) {
        var set = Set<String>()
        for header in acceptHeaders {
            // Split on scalars, not Characters: a combining mark after `,` or `;` would glue
            // itself to the separator and hide it.
            for part in header.unicodeScalars.split(separator: ",") {
                let type = part.split(separator: ";", maxSplits: 1).first.map { Substring($0).trimmingSpaces().lowercased() } ?? ""
                if !type.isEmpty { set.insert(type) }
            }
        }
        accepted = set
    }

    /// What to do with a stored manifest of `mediaType`.
    public enum Decision: Equatable, Sendable {
        /// Serve the stored bytes unchanged.
        case serve
        /// Serve the `linux/amd64` child of this Docker manifest list instead.
        case serveLinuxAmd64Child
        /// Answer 404 `MANIFEST_UNKNOWN` with this message.
        case notAcceptable(String)
    }

    public func decide(mediaType: String, requestedByTag: Bool) -> Decision {
        switch mediaType {
        case MediaType.ociManifest where !accepted.contains(MediaType.ociManifest):
            return .notAcceptable("OCI manifest found, but accept header does not support OCI manifests")
        case MediaType.ociIndex where !accepted.contains(MediaType.ociIndex):
            return .notAcceptable("OCI index found, but accept header does not support OCI indexes")
        case MediaType.dockerManifestList where requestedByTag && !accepted.contains(MediaType.dockerManifestList):
            return .serveLinuxAmd64Child
        default:
            return .serve
        }
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
