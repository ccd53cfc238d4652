/// Docker Hub's naming rules, written once: the image reference parser and the request router
/// both use them.
public enum RegistryHost {
    /// The registry key of Docker Hub.
    public static let dockerHub = "docker.io"

    /// Docker Hub's other spellings name the same registry.
    public static func canonical(_ host: String) -> String {
        switch host {
        case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com": dockerHub
        default: host
        }
    }

    /// A repository's components as `registry` names them: on Docker Hub a single component
    /// is an official image (`alpine` is `library/alpine`).
    public static func repositoryComponents(_ components: [Substring], registry: String) -> [Substring] {
        guard registry == dockerHub, components.count == 1 else { return components }
        return ["library"] + components
    }

    /// Whether a path's first component names a host, as a Docker reference's domain does: a
    /// lower-case host name with a dot or a port, or `localhost`. Docker Hub namespaces have
    /// neither.
    public static func looksLikeHost(_ component: Substring) -> Bool {
        var host = component
        if let colon = component.lastIndex(of: ":") {
            let port = component[component.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            host = component[..<colon]
        } else if !component.contains("."), component != "localhost" {
            return false
        }
        return !host.isEmpty && host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
        }
    }
}
