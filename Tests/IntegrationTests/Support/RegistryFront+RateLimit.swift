import Foundation

/// Docker Hub's pull rate limit, played by `Fixtures/registry_front.py`.
///
/// As documented for Hub (docs.docker.com/docker-hub/usage/pulls) and seen in the field:
/// - every response to a manifest GET or HEAD (`/v2/<name>/manifests/<ref>`) that got past
///   authentication (anything but a 401) carries `ratelimit-limit: N;w=W`,
///   `ratelimit-remaining: R;w=W` and `docker-ratelimit-source: 127.0.0.1` (with
///   `headerPrefix: "x-"`: `x-ratelimit-limit` / `x-ratelimit-remaining`);
/// - only successful (2xx) manifest GETs count, in a sliding window of `window` seconds;
///   HEADs, blobs and failed GETs never count;
/// - once `limit` GETs were counted, a manifest GET that would have succeeded gets 429
///   `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate
///   limit. …"}]}` with the rate-limit headers (remaining 0) and **no** `Retry-After`;
///   the front checks with a HEAD to the backend first, so a 401 or 404 still comes from
///   the backend, and the backend's access log shows that HEAD instead of a GET;
/// - HEADs keep answering 200 with remaining 0, unless `head429` (then they get 429 too).
///
/// Turning the limit on (again) starts a fresh count; ``rateLimitOff()`` removes it and
/// its headers. The existing modes (``fail(with:)``, ``ignoreRange(_:)``) are independent;
/// a forced status wins over the rate limit.
extension RegistryFront {
    /// The front's rate-limit bookkeeping (`GET /_front/ratelimit`).
    public struct RateLimitState: Sendable, Equatable, Decodable {
        /// Whether a rate limit is on.
        public let enabled: Bool
        /// `N` (nil when off).
        public let limit: Int?
        /// The window in seconds (nil when off).
        public let window: Int?
        /// Pulls counted in the current window: the single budget, or with `perUser` the
        /// anonymous one (key "").
        public let used: Int
        /// `limit - used`, never below 0 (nil when off).
        public let remaining: Int?
        /// `""` or `"x-"` (nil when off).
        public let headerPrefix: String?
        /// Whether exhausted HEADs get 429.
        public let head429: Bool
        /// Whether each user has a budget of their own.
        public let perUser: Bool
        /// Counted pulls by budget key ("" is anonymous), only keys with pulls in the window.
        public let users: [String: Int]

        enum CodingKeys: String, CodingKey {
            case enabled, limit, window, used, remaining, users
            case headerPrefix = "headers"
            case head429 = "head_429"
            case perUser = "per_user"
        }
    }

    /// Turns Docker Hub's pull rate limit on with a fresh count.
    ///
    /// - Parameters:
    ///   - limit: Manifest GETs allowed per window (`ratelimit-limit: <limit>;w=<window>`).
    ///   - window: The window in seconds (sliding: a pull stops counting `window` seconds
    ///     after it was made).
    ///   - headerPrefix: `""` for `ratelimit-*` (Hub's documented names) or `"x-"` for
    ///     `x-ratelimit-*`.
    ///   - head429: Whether HEADs also get 429 once the limit is reached (off on Hub as
    ///     documented; some field notes report it).
    ///   - perUser: One budget per user (the Basic user name, or the `sub` of a Bearer
    ///     JWT such as ``TokenIssuer``'s; anonymous is ""), reported in
    ///     `docker-ratelimit-source` instead of the IP.
    public func rateLimit(
        limit: Int,
        window: Int,
        headerPrefix: String = "",
        head429: Bool = false,
        perUser: Bool = false
    ) async throws {
        precondition(headerPrefix == "" || headerPrefix == "x-", "headerPrefix must be \"\" or \"x-\"")
        let spec: [String: Any] = [
            "limit": limit, "window": window, "headers": headerPrefix, "head_429": head429, "per_user": perUser,
        ]
        try await setMode(["ratelimit": spec])
    }

    /// Turns the rate limit off (no more headers, no more 429s).
    public func rateLimitOff() async throws {
        try await setMode(["ratelimit": NSNull()])
    }

    /// The current count (`GET /_front/ratelimit`).
    public func rateLimitState() async throws -> RateLimitState {
        let response = try await HTTPFetch.get("\(url)/_front/ratelimit")
        guard response.status == 200 else {
            throw ManagedProcess.Failure("front: GET /_front/ratelimit answered \(response.status): \(response.text)")
        }
        return try JSONDecoder().decode(RateLimitState.self, from: response.body)
    }

    private func setMode(_ mode: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: mode)
        let response = try await HTTPFetch.request(
            "\(url)/_front/mode", method: "POST", headers: [("Content-Type", "application/json")], body: body)
        guard response.status == 200 else {
            throw ManagedProcess.Failure("front refused mode \(String(decoding: body, as: UTF8.self)): \(response.status) \(response.text)")
        }
    }
}
