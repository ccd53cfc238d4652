import HTTPTypes

extension HTTPField.Name {
    static let dockerContentDigest = Self("Docker-Content-Digest")!
    static let dockerDistributionAPIVersion = Self("Docker-Distribution-API-Version")!
    static let ociNamespace = Self("OCI-Namespace")!
    static let warning = Self("Warning")!
    static let link = Self("Link")!
    static let ociFiltersApplied = Self("OCI-Filters-Applied")!
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-ID")!
}

/// Headers every response carries, so that nothing served from the gateway's origin (an
/// upstream's manifest claiming `text/html`, an error body) is sniffed or run as a page there:
/// the status page, `status.json` and the registry API share the origin, and browsers replay
/// Basic credentials to it.
enum ResponseHardening {
    /// Everything but the status page: fetch nothing, run nothing, frame nowhere; `sandbox`
    /// gives a document that does get rendered a unique origin without scripts.
    static let policy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"
    /// The status page: its inline `<style>` and `style` attributes, nothing else (no scripts).
    static let statusPagePolicy = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

    /// Adds `nosniff`, and the restrictive policy unless the response set its own.
    static func apply(to headers: inout HTTPFields) {
        headers[.xContentTypeOptions] = "nosniff"
        if headers[.contentSecurityPolicy] == nil { headers[.contentSecurityPolicy] = policy }
    }
}
