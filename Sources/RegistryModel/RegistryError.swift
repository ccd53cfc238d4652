/// An error a client sees, rendered as the OCI error envelope
/// `{"errors":[{"code","message","detail"}]}` with the matching HTTP status.
public struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The error codes of the distribution spec ("Error Codes") that a pull-only mirror uses;
    /// no other code ever reaches a client. Failures the spec has no code for (an upstream
    /// outage, an unsatisfiable range) keep their HTTP status and take the nearest listed
    /// code, with what happened in `message` and `detail`.
    public enum Code: String, Sendable, CaseIterable {
        case blobUnknown = "BLOB_UNKNOWN"
        case manifestUnknown = "MANIFEST_UNKNOWN"
        case manifestInvalid = "MANIFEST_INVALID"
        case nameUnknown = "NAME_UNKNOWN"
        case nameInvalid = "NAME_INVALID"
        case digestInvalid = "DIGEST_INVALID"
        /// Also a `Range` outside the blob (416): the requested length does not fit its size.
        case sizeInvalid = "SIZE_INVALID"
        case unauthorized = "UNAUTHORIZED"
        case denied = "DENIED"
        case unsupported = "UNSUPPORTED"
        case tooManyRequests = "TOOMANYREQUESTS"

        /// The status this code is answered with unless a caller overrides it.
        public var defaultStatus: Int {
            switch self {
            case .blobUnknown, .manifestUnknown, .nameUnknown: 404
            case .manifestInvalid, .nameInvalid, .digestInvalid: 400
            case .sizeInvalid: 416
            case .unauthorized: 401
            case .denied: 403
            case .unsupported: 405
            case .tooManyRequests: 429
            }
        }
    }

    public var code: Code
    public var status: Int
    public var message: String
    public var detail: String?
    /// Extra response headers (for example `Retry-After` or `Content-Range`).
    public var headers: [(String, String)]

    public init(_ code: Code, status: Int? = nil, _ message: String, detail: String? = nil, headers: [(String, String)] = []) {
        self.code = code
        self.status = status ?? code.defaultStatus
        self.message = message
        self.detail = detail
        self.headers = headers
    }

    public var description: String { "\(status) \(code.rawValue): \(message)" }

    public static func == (lhs: RegistryError, rhs: RegistryError) -> Bool {
        lhs.code == rhs.code && lhs.status == rhs.status && lhs.message == rhs.message && lhs.detail == rhs.detail
    }

    /// The JSON error envelope.
    public var envelope: String {
        var entry = "{\"code\":\"\(code.rawValue)\",\"message\":\(JSONString.quote(message))"
        if let detail {
            entry += ",\"detail\":\(JSONString.quote(detail))"
        }
        return "{\"errors\":[" + entry + "}]}"
    }
}

/// Minimal JSON string quoting for error envelopes (hand-written: the envelope is a
/// fixed shape and Foundation's encoder would add an allocation-heavy path to every error).
public enum JSONString {
    public static func quote(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
