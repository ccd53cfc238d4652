import Foundation
import MirrorGateConfig

/// How ``UpstreamClient`` follows an upstream's redirects by hand (AsyncHTTPClient's own
/// following is off):
///
/// - only 301, 302, 303, 307 and 308, only to `http` or `https` URLs with a host;
/// - at most ``maxHops`` hops in one chain;
/// - never from `https` to `http`, at any hop;
/// - the upstream's `Authorization` (its Basic credentials, or a token obtained for it) only
///   on the upstream's own origin: the same scheme, host and port, compared the way
///   AsyncHTTPClient picks the connection (`URL.host` without IPv6 brackets, the scheme's
///   default port when none is given). A redirect to a CDN, to another port or to another
///   scheme on the same host gets no credentials.
public struct RedirectPolicy: Sendable {
    /// The statuses that are followed (for GET and HEAD).
    public static let statuses: Set<Int> = [301, 302, 303, 307, 308]

    /// Redirect hops followed at most in one chain.
    public let maxHops: Int
    private let origin: Origin

    /// The policy for requests to `upstream`.
    public init(upstream: UpstreamURL, maxHops: Int) {
        self.maxHops = maxHops
        origin = Origin(scheme: upstream.scheme.lowercased(), host: upstream.host.lowercased(), port: upstream.port)
    }

    /// Whether a request to `url` may carry the upstream's credentials: `url` is on the
    /// upstream's origin.
    public func carriesCredentials(_ url: String) -> Bool {
        guard let url = URL(string: url), let target = Origin(url) else { return false }
        return target == origin
    }

    /// The absolute URL to request after `current` was answered `status` with `location`,
    /// when `hopsSoFar` redirects of this chain were already followed.
    ///
    /// - Throws: ``UpstreamError/redirect(_:)`` for no `Location`, more than ``maxHops``
    ///   hops, an unusable `Location` or one from `https` to `http`.
    public func next(after current: String, status: Int, location: String?, hopsSoFar: Int) throws(UpstreamError) -> String {
        guard let location else { throw .redirect("\(status) without Location") }
        guard hopsSoFar + 1 <= maxHops else { throw .redirect("more than \(maxHops) redirects") }
        guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteURL,
              let scheme = next.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = next.host, !host.isEmpty
        else {
            throw .redirect("unusable Location")
        }
        if URL(string: current)?.scheme?.lowercased() == "https", scheme == "http" {
            throw .redirect("refusing to follow a redirect from https to http")
        }
        return next.absoluteString
    }

    /// Scheme, host and port as AsyncHTTPClient connects to them.
    private struct Origin: Equatable, Sendable {
        var scheme: String
        var host: String
        var port: Int

        init(scheme: String, host: String, port: Int?) {
            self.scheme = scheme
            self.host = host
            self.port = port ?? (scheme == "https" ? 443 : 80)
        }

        init?(_ url: URL) {
            guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  var host = url.host?.lowercased(), !host.isEmpty
            else { return nil }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.init(scheme: scheme, host: host, port: url.port)
        }
    }
}
