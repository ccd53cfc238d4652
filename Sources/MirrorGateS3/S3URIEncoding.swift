/// URI encoding as S3's SigV4 wants it: every byte except the RFC 3986 unreserved characters
/// (`A–Z a–z 0–9 - . _ ~`) becomes `%XY` with upper-case hex, over the UTF-8 bytes.
///
/// S3 differs from the other AWS services in two ways that matter here: the path is encoded
/// once (never twice) and is not normalised (`a/./b` and `a//b` are distinct keys), so the
/// encoded path is both what goes on the wire and what is signed.
public enum S3URIEncoding {
    /// Encodes an object key for the request path: `/` is kept, everything else per the rule above.
    public static func path(_ key: String) -> String {
        encode(key, keepSlash: true)
    }

    /// Encodes a query parameter name or value: `/` becomes `%2F` too.
    public static func queryComponent(_ value: String) -> String {
        encode(value, keepSlash: false)
    }

    /// The canonical query string: each name and value encoded, pairs sorted by encoded name
    /// (then value), joined with `&`; a parameter without a value is written `name=`.
    public static func canonicalQuery(_ items: [(name: String, value: String)]) -> String {
        items
            .map { (queryComponent($0.name), queryComponent($0.value)) }
            .sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    private static let hex: [UInt8] = Array("0123456789ABCDEF".utf8)

    private static func encode(_ value: String, keepSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
