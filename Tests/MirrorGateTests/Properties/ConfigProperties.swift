import Foundation
import MirrorGateConfig
import PropertyBased
import RegistryModel
import Testing

/// Property checks of the configuration parsers: value formats with numbers past every limit,
/// random YAML documents built from the real key vocabulary, and mutated copies of the shipped
/// `gateway.yaml`. The loader must never crash, and every error must name where it is.
@Suite("Properties: Config")
struct ConfigProperties {
    // MARK: Durations

    static let durationExtra = ["ms", "s", "m", "h", "d", "0", "999999999999", "9999999999999", "106751", "d", " ", "1h", "30m", "-"]

    @Test func anyDurationTextParsesToSomethingThatFormatsBack() async {
        await propertyCheck(count: HostileInput.scaled(3000), input: HostileInput.strings(extra: Self.durationExtra, maxParts: 12)) { text in
            do throws(ValueParseError) {
                let duration = try ConfigValues.parseDuration(text)
                #expect(duration >= .zero)
                #expect(duration <= ConfigValues.maxDuration, "\(text.debugDescription)")
                let formatted = ConfigValues.format(duration)
                #expect(try ConfigValues.parseDuration(formatted) == duration, "\(text.debugDescription) → \(formatted)")
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
    }

    /// Sums of `<number><unit>` terms with numbers of up to 40 digits: the exact value is computed
    /// in 128-bit milliseconds; the parser returns it, or says "too long" past `maxDuration`.
    @Test func durationSumsAreExactOrTooLong() async {
        let input = Generator { rng in
            (0..<HostileInput.int(&rng, 1...8)).map { _ in
                (HostileInput.int(&rng, 0...3) == 0 ? HostileInput.run(of: "9", 10...20, &rng) : HostileInput.decimal(&rng),
                 HostileInput.pick(["ms", "s", "m", "h", "d"], &rng))
            }
        }
        await propertyCheck(count: HostileInput.scaled(3000), input: input) { terms in
            let text = terms.map { $0.0 + $0.1 }.joined()
            let unitMs: [String: Int128] = ["ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
            let limit = Int128(9_223_372_036_854)
            // nil: a number beyond 38 digits, certainly too long.
            let exact = terms.reduce(Int128(0) as Int128?) { sum, term in
                guard let sum, let n = Int128(term.0), n <= limit else { return nil }
                return sum + n * unitMs[term.1]!
            }
            do throws(ValueParseError) {
                let duration = try ConfigValues.parseDuration(text)
                #expect(exact.map { Duration.milliseconds(Int64($0)) } == duration, "\(text)")
            } catch {
                #expect(exact == nil || exact! > limit, "\(text): \(error.message)")
                #expect(error.message.contains("too long"), "\(text): \(error.message)")
            }
        }
    }

    // MARK: Sizes

    static let sizeExtra = ["B", "KiB", "MiB", "GiB", "TiB", "TB", "GB", " ", "99999999999999999999", "16777216", "999999999999999"]

    @Test func anySizeTextIsExactOrRejected() async {
        await propertyCheck(count: HostileInput.scaled(3000), input: HostileInput.strings(extra: Self.sizeExtra, maxParts: 6)) { text in
            do throws(ValueParseError) {
                let size = try ConfigValues.parseByteSize(text)
                // Re-derive the value: digits, spaces, unit.
                let trimmed = text.trimmingCharacters(in: .init(charactersIn: " "))
                let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
                let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .init(charactersIn: " "))
                let shift: [String: Int] = ["": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40]
                #expect(UInt128(size) == UInt128(String(digits))! << shift[unit]!, "\(text.debugDescription)")
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
    }

    @Test func hugeSizesAreRejectedNotWrapped() async {
        let input = Generator { rng in (HostileInput.decimal(&rng), HostileInput.pick(["", "B", "KiB", "MiB", "GiB", "TiB"], &rng)) }
        await propertyCheck(count: HostileInput.scaled(2000), input: input) { digits, unit in
            let shift: [String: Int] = ["": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40]
            let exact = UInt128(digits).map { $0 << shift[unit]! }  // 40 digits do not fit: nil
            do throws(ValueParseError) {
                let size = try ConfigValues.parseByteSize(digits + unit)
                #expect(UInt128(size) == exact, "\(digits)\(unit)")
            } catch {
                if let exact, exact <= UInt128(UInt64.max) {
                    // Only the 15-digit limit may reject a value that fits.
                    #expect(digits.count > 15, "\(digits)\(unit): \(error.message)")
                }
            }
        }
    }

    // MARK: Documents

    static let environment = ["USER": "alice", "TOKEN": "s3cr3t", "EMPTY": "", "WEIRD": "${USER}\"\n: [x]"]
    static let files = ["/run/secrets/hub": "pw\r\n", "/run/secrets/empty": ""]

    static func loader() -> ConfigLoader {
        ConfigLoader(environment: environment, readFile: { path in
            guard let content = files[path] else { throw CocoaError(.fileReadNoSuchFile) }
            return content
        })
    }

    static let topKeys = ["listen", "storage", "tags", "default_registry", "health", "registries", "admin_listen", "log", "tls", "auth", "limits", "ledger"]
    static let innerKeys = [
        "path", "max_size", "ttl", "serve_stale", "interval", "timeout", "failure_threshold", "upstreams", "name", "url", "prefix",
        "username", "password", "password_file", "budget", "pulls", "window", "resolve", "skip_tls_verify", "auth_hosts",
        "docker.io", "ghcr.io", "localhost:5000", "registry.local:0", "[::1]:5000", "policy", "allow", "deny", "retention",
    ]
    static let scalars = [
        "0.0.0.0:5000", "[::]:5000", ":5000", "127.0.0.1:65536", "0.0.0.0:-1", "0.0.0.0:+80", "./data", "", "50GiB", "1MiB", "1KiB",
        "99999999999999999999TB", "16777216TiB", "10m", "0", "100ms", "9999999999999h", "999999999999d", "106751d", "true", "no",
        "maybe", "3", "-1", "1001", "https://mirror.gcr.io", "http://127.0.0.1:5000/v2/", "https://user:pw@host", "ftp://x",
        "https://[::1]:99999", "https://h/?q", "http://", "library", "a..b", "a/../b", "/abs/", "${USER}", "${TOKEN}", "${UNSET}",
        "${", "${bad name}", "$$", "$${USER}", "${WEIRD}", "/run/secrets/hub", "/run/secrets/empty", "/nonexistent", "docker.io",
        "gcr-mirror", "name with spaces", "library/*", "**", "a/**/b", "**x", "Library/x", "a//b", "~", "null", "&anchor x", "*anchor", "!!binary aGk=", "%TAG", "{", "[", "\"", "'",
    ]

    /// A random YAML value, `depth` levels deep at most, written in block or flow style.
    static func value(_ rng: inout HostileInput.RNG, depth: Int, indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        switch depth <= 0 ? 0 : HostileInput.int(&rng, 0...4) {
        case 0, 1:
            return " " + scalar(&rng)
        case 2:
            let count = HostileInput.int(&rng, 0...3)
            if count == 0 { return " []" }
            return (0..<count).map { _ in "\n\(pad)-" + value(&rng, depth: depth - 1, indent: indent + 2) }.joined()
        case 3:
            let keys = topKeys + innerKeys
            let count = HostileInput.int(&rng, 0...4)
            if count == 0 { return " {}" }
            return (0..<count).map { _ in
                let key = HostileInput.int(&rng, 0...9) == 0 ? HostileInput.string(&rng, maxParts: 3) : HostileInput.pick(keys, &rng)
                return "\n\(pad)\(quotedIfNeeded(key, &rng)):" + value(&rng, depth: depth - 1, indent: indent + 2)
            }.joined()
        default:
            let items = (0..<HostileInput.int(&rng, 0...3)).map { _ in "\"" + escaped(scalar(&rng)) + "\"" }
            return HostileInput.int(&rng, 0...1) == 0
                ? " [" + items.joined(separator: ", ") + "]"
                : " {" + items.enumerated().map { "k\($0): \($1)" }.joined(separator: ", ") + "}"
        }
    }

    static func escaped(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if c.value < 0x20 || c.value == 0x7F || (0x80...0x9F).contains(c.value) || c == "\u{FEFF}" || c == "\u{2028}" || c == "\u{2029}" {
                    out += "\\U" + String(repeating: "0", count: 8 - String(c.value, radix: 16).count) + String(c.value, radix: 16)
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out
    }

    static func quotedIfNeeded(_ s: String, _ rng: inout HostileInput.RNG) -> String {
        HostileInput.int(&rng, 0...4) == 0 || s.isEmpty || !s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-/".contains($0)) })
            ? "\"" + escaped(s) + "\"" : s
    }

    static func scalar(_ rng: inout HostileInput.RNG) -> String {
        switch HostileInput.int(&rng, 0...5) {
        case 0: return "\"" + escaped(HostileInput.string(&rng, maxParts: 6)) + "\""
        case 1: return HostileInput.string(&rng, maxParts: 4)  // plain: may well be a syntax error
        default:
            let s = HostileInput.pick(scalars, &rng)
            return HostileInput.int(&rng, 0...1) == 0 ? "\"" + escaped(s) + "\"" : s
        }
    }

    /// A document with the top-level keys and a usually well-formed `registries` section, so
    /// that validation gets past the first key often.
    static let documents = Generator { rng -> String in
        var lines: [String] = []
        for key in topKeys.shuffled(using: &rng).prefix(HostileInput.int(&rng, 0...topKeys.count)) where key != "registries" {
            lines.append(key + ":" + value(&rng, depth: 2, indent: 2))
        }
        if HostileInput.int(&rng, 0...5) > 0 {
            var registries = "registries:"
            for host in ["docker.io", "ghcr.io", "localhost:5000"].prefix(HostileInput.int(&rng, 1...3)) {
                registries += "\n  \(host):"
                if HostileInput.int(&rng, 0...3) == 0 { registries += "\n    policy:" + value(&rng, depth: 2, indent: 6) }
                registries += "\n    upstreams:"
                for _ in 0..<HostileInput.int(&rng, 1...2) {
                    registries += "\n      - url:" + (HostileInput.int(&rng, 0...2) == 0 ? " " + scalar(&rng) : " https://mirror.gcr.io")
                    for key in ["name", "prefix", "username", "password", "password_file", "budget", "resolve", "skip_tls_verify", "auth_hosts"]
                    where HostileInput.int(&rng, 0...4) == 0 {
                        registries += "\n        \(key):" + value(&rng, depth: 1, indent: 10)
                    }
                }
            }
            lines.insert(registries, at: HostileInput.int(&rng, 0...lines.count))
        } else {
            lines.append("registries:" + value(&rng, depth: 3, indent: 2))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The top-level key of a key path such as `registries.docker.io.upstreams[0].url`, as
    /// bytes: by Characters, a combining accent after the `.` would hide it.
    static func firstSegment(_ key: String) -> [UInt8] {
        // The first byte belongs to the key even when it is a `.` (a key such as `.x`).
        Array(key.utf8.prefix(1)) + key.utf8.dropFirst().prefix { $0 != UInt8(ascii: ".") && $0 != UInt8(ascii: "[") }
    }

    /// What every load must satisfy: no crash; a loaded configuration meets the documented
    /// bounds and renders its routing plan; an error names a key path (or the file and line).
    static func checkLoad(_ yaml: String) {
        do throws(ConfigError) {
            let config = try loader().load(yaml: yaml)
            #expect(!config.registries.isEmpty)
            #expect(config.registries.contains { $0.key == config.defaultRegistry })
            #expect(config.storage.maxSize >= 1 << 20)
            #expect(config.health.interval >= .milliseconds(100))
            #expect(config.health.timeout >= .milliseconds(10))
            #expect(config.tags.ttl <= ConfigValues.maxDuration)
            #expect(config.health.timeout <= ConfigValues.maxDuration)
            for registry in config.registries {
                #expect(ConfigLoader.isRegistryHost(registry.key))
                #expect(!registry.upstreams.isEmpty)
                for upstream in registry.upstreams {
                    #expect(upstream.url.scheme == "http" || upstream.url.scheme == "https")
                    // A prefix is put in front of validated names in upstream paths: it must be a name itself.
                    if !upstream.prefix.isEmpty {
                        #expect((try? RepositoryName(parsing: upstream.prefix)) != nil, "prefix \(upstream.prefix.debugDescription)")
                    }
                    if let budget = upstream.budget { #expect(budget.pulls >= 1 && budget.window >= .seconds(1)) }
                }
            }
            #expect(!config.routingPlan.isEmpty)
        } catch {
            let rendered = error.description
            switch error {
            case .syntax(let file, let line, _):
                #expect(file == "gateway.yaml")
                #expect(rendered.hasPrefix("gateway.yaml"))
                #expect(line != nil, "syntax error without a line: \(rendered)")
            case .invalid(let key, _, _), .missingEnvironmentVariable(_, let key, _), .unreadableSecretFile(_, let key, _, _):
                #expect(!key.isEmpty, "\(rendered)")
                #expect(rendered.hasPrefix(key))
                let top = firstSegment(key)
                #expect(key == "(top level)" || Array(yaml.utf8).firstRange(of: top) != nil, "key \(key.debugDescription) not in the document:\n\(yaml)")
            case .unreadable:
                Issue.record("load(yaml:) reads no file: \(rendered)")
            }
        }
    }

    @Test func randomDocumentsNeverCrashTheLoader() async {
        await propertyCheck(count: HostileInput.scaled(1500), input: Self.documents) { yaml in
            Self.checkLoad(yaml)
        }
    }

    static let shippedConfig: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("gateway.yaml"), encoding: .utf8)) ?? ""
    }()

    /// `gateway.yaml` with lines deleted, duplicated or swapped, hostile text spliced in and
    /// values replaced.
    static let mutatedConfigs = Generator { rng -> String in
        var lines = shippedConfig.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for _ in 0..<HostileInput.int(&rng, 1...4) {
            let i = HostileInput.int(&rng, 0...(lines.count - 1))
            switch HostileInput.int(&rng, 0...5) {
            case 0: lines.remove(at: i)
            case 1: lines.insert(lines[i], at: i)
            case 2: lines.swapAt(i, HostileInput.int(&rng, 0...(lines.count - 1)))
            case 3:
                let line = lines[i]
                let at = line.index(line.startIndex, offsetBy: HostileInput.int(&rng, 0...line.count))
                lines[i] = String(line[..<at]) + HostileInput.string(&rng, maxParts: 3) + String(line[at...])
            case 4:
                if let colon = lines[i].firstIndex(of: ":") {
                    lines[i] = String(lines[i][...colon]) + " " + scalar(&rng)
                }
            default:
                lines[i] = String(repeating: " ", count: HostileInput.int(&rng, 0...3)) + lines[i]
            }
            if lines.isEmpty { lines = [""] }
        }
        return lines.joined(separator: "\n")
    }

    @Test func theShippedConfigLoads() throws {
        #expect(!Self.shippedConfig.isEmpty)
        _ = try Self.loader().load(yaml: Self.shippedConfig)
    }

    @Test func mutatedShippedConfigsNeverCrashTheLoader() async {
        await propertyCheck(count: HostileInput.scaled(1500), input: Self.mutatedConfigs) { yaml in
            Self.checkLoad(yaml)
        }
    }

    /// Nesting, anchors and aliases that explode when expanded: the loader only reads what it
    /// knows, so neither may cost more than the text itself.
    @Test func deepNestingAndAliasBombsAreErrors() {
        for depth in [10, 100, 1000] {
            Self.checkLoad("registries: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n")
            Self.checkLoad("listen: " + String(repeating: "{a: ", count: depth) + "x" + String(repeating: "}", count: depth) + "\n")
        }
        var bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 { bomb += "\(Character(Unicode.Scalar(97 + level)!)): &\(Character(Unicode.Scalar(97 + level)!)) [" + Array(repeating: "*\(Character(Unicode.Scalar(96 + level)!))", count: 10).joined(separator: ", ") + "]\n" }
        Self.checkLoad(bomb + "registries: *j\n")
    }
}
