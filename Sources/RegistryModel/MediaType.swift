/// Manifest media types a mirror fetches and serves.
public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    public static let octetStream = "application/octet-stream"

    /// The `Accept` list sent upstream for every manifest request. It is always complete:
    /// the digest a tag resolves to depends on it, and distribution answers 404 for OCI
    /// content (or rewrites lists to schema1) when types are missing.
    public static let upstreamManifestAccept = [ociIndex, ociManifest, dockerManifestList, dockerManifest].joined(separator: ", ")

    /// `true` for the index types whose entries point at other manifests.
    public static func isIndex(_ type: String) -> Bool {
        type == ociIndex || type == dockerManifestList
    }
}
