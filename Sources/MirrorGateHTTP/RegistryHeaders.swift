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
