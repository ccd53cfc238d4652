import Foundation
import MirrorGateConfig
import PropertyBased
import Testing

/// The repository patterns of `registries.<key>.policy`: `*` within one component, `**` across.
@Suite("RepositoryGlob")
struct RepositoryGlobTests {
    static func glob(_ pattern: String) throws -> RepositoryGlob {
        try RepositoryGlob(parsing: pattern)
    }

    @Test func starMatchesWithinOneComponent() throws {
        let library = try Self.glob("library/*")
        #expect(library.matches("library/ubuntu"))
        #expect(library.matches("library/a"))
        #expect(!library.matches("library/a/b"), "* must not cross a /")
        #expect(!library.matches("library"))
        #expect(!library.matches("someone/ubuntu"))
        let nightly = try Self.glob("library/*-nightly")
        #expect(nightly.matches("library/app-nightly"))
        #expect(nightly.matches("library/-nightly"))
        #expect(!nightly.matches("library/app-nightly-2"))
        #expect(try Self.glob("*/*").matches("someone/random"))
        #expect(try Self.glob("a*b*c").matches("aXXbYYbc"))
        #expect(!(try Self.glob("a*b*c").matches("aXXbYYb")))
        #expect(try Self.glob("grafana/grafana").matches("grafana/grafana"))
        #expect(!(try Self.glob("grafana/grafana").matches("grafana/grafana-oss")))
    }

    @Test func doubleStarMatchesAcrossComponents() throws {
        let under = try Self.glob("org/**")
        #expect(under.matches("org/a"))
        #expect(under.matches("org/a/b/c"))
        #expect(!under.matches("org"), "a trailing ** is everything below, not the namespace itself")
        #expect(!under.matches("organization/a"))
        let middle = try Self.glob("org/**/app")
        #expect(middle.matches("org/app"), "/**/ also matches no component")
        #expect(middle.matches("org/team/app"))
        #expect(middle.matches("org/a/b/app"))
        #expect(!middle.matches("org/app/x"))
        let leading = try Self.glob("**/nightly")
        #expect(leading.matches("nightly"))
        #expect(leading.matches("a/b/nightly"))
        #expect(!leading.matches("a/nightly-x"))
        #expect(try Self.glob("**").matches("anything/at/all"))
        #expect(try Self.glob("**/*-rc").matches("team/app-rc"))
    }

    @Test func patternsThatCouldNeverMatchAreRefused() {
        for (pattern, words) in [
            ("", "empty"), ("/library/*", "starts or ends"), ("library/", "starts or ends"), ("a//b", "empty path component"),
            ("library/**x", "whole path component"), ("***", "whole path component"), ("Library/ubuntu", "lowercase"),
            ("library/ubu ntu", "cannot appear"), ("library/app:tag", "cannot appear"), ("library/?", "cannot appear"),
            (String(repeating: "a", count: 256), "longer than"),
        ] {
            do {
                _ = try RepositoryGlob(parsing: pattern)
                Issue.record("\(pattern.debugDescription) was accepted")
            } catch {
                #expect(error.message.contains(words), "\(pattern): \(error.message)")
            }
        }
    }

    // MARK: Against a second matcher

    /// A second, independent matcher: components by plain recursion, `*` by regular expression.
    static func reference(_ pattern: String, _ name: String) -> Bool {
        let p = pattern.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let n = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        func component(_ glob: String, _ text: String) -> Bool {
            let regex = "^" + glob.split(separator: "*", omittingEmptySubsequences: false).map { NSRegularExpression.escapedPattern(for: String($0)) }
                .joined(separator: "[^/]*") + "$"
            return text.range(of: regex, options: .regularExpression) != nil
        }
        func match(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == n.count }
            if p[i] == "**" {
                if i == p.count - 1 { return j < n.count }
                return (j...n.count).contains { match(i + 1, $0) }
            }
            return j < n.count && component(p[i], n[j]) && match(i + 1, j + 1)
        }
        return match(0, 0)
    }

    static let patternPieces = ["a", "b", "ab", "*", "-", ".", "a*", "*b", "**"]
    static let namePieces = ["a", "b", "ab", "ba", "a-b", "a.b", "aab", "-", "abb"]

    static func joined(_ pieces: [String], _ rng: inout any SeededRandomNumberGenerator, components: ClosedRange<Int>, glob: Bool) -> String {
        (0..<Int.random(in: components, using: &rng)).map { _ -> String in
            if glob, Int.random(in: 0...4, using: &rng) == 0 { return "**" }
            let parts = (0..<Int.random(in: 1...3, using: &rng)).map { _ in pieces[Int.random(in: 0..<pieces.count, using: &rng)] }
            var text = parts.joined()
            while text.contains("**") { text = text.replacingOccurrences(of: "**", with: "*") }
            return text
        }.joined(separator: "/")
    }

    @Test func agreesWithAnIndependentMatcher() async throws {
        let input = Generator { rng in
            (Self.joined(Self.patternPieces, &rng, components: 1...4, glob: true), Self.joined(Self.namePieces, &rng, components: 1...5, glob: false))
        }
        await propertyCheck(count: HostileInput.scaled(4000), input: input) { pattern, name in
            guard let glob = try? RepositoryGlob(parsing: pattern) else {
                Issue.record("generated an invalid pattern \(pattern)")
                return
            }
            #expect(glob.matches(name) == Self.reference(pattern, name), "\(pattern) against \(name)")
        }
    }

    /// A name matches itself as a pattern, and `**` matches everything.
    @Test func namesMatchThemselves() async throws {
        let input = Generator { rng in Self.joined(Self.namePieces, &rng, components: 1...6, glob: false) }
        await propertyCheck(count: HostileInput.scaled(1000), input: input) { name in
            #expect((try? RepositoryGlob(parsing: name))?.matches(name) == true, "\(name)")
            #expect((try? RepositoryGlob(parsing: "**"))?.matches(name) == true, "\(name)")
        }
    }

    @Test func denyWinsOverAllow() throws {
        let policy = RepositoryPolicy(allow: [try Self.glob("library/*"), try Self.glob("bitnami/*")], deny: [try Self.glob("library/*-nightly")])
        #expect(policy.denial(of: "library/ubuntu") == nil)
        #expect(policy.denial(of: "bitnami/redis") == nil)
        #expect(policy.denial(of: "library/app-nightly") == .denied(try Self.glob("library/*-nightly")))
        #expect(policy.denial(of: "someone/random") == .notAllowed)
        let denyOnly = RepositoryPolicy(deny: [try Self.glob("**/*-rc")])
        #expect(denyOnly.denial(of: "someone/random") == nil, "without allow, everything not denied is allowed")
        #expect(denyOnly.denial(of: "team/app-rc") != nil)
    }

    @Test func messagesNameTheRepositoryAndTheRule() throws {
        let policy = RepositoryPolicy(allow: [try Self.glob("library/*"), try Self.glob("grafana/grafana")], deny: [try Self.glob("library/*-nightly")])
        #expect(policy.message(for: .notAllowed, registry: "docker.io", repository: "someone/random")
            == "repository docker.io/someone/random is not allowed by this gateway's policy: it matches none of registries.docker.io.policy.allow (library/*, grafana/grafana)")
        #expect(policy.message(for: .denied(try Self.glob("library/*-nightly")), registry: "docker.io", repository: "library/app-nightly")
            == "repository docker.io/library/app-nightly is denied by this gateway's policy: it matches 'library/*-nightly' in registries.docker.io.policy.deny")
        #expect(policy.rule(for: .notAllowed, registry: "docker.io") == "registries.docker.io.policy.allow (no match)")
        let many = RepositoryPolicy(allow: try (0..<10).map { try Self.glob("team\($0)/*") })
        #expect(many.message(for: .notAllowed, registry: "r.example", repository: "x/y").hasSuffix("team7/* and 2 more)"))
    }
}
