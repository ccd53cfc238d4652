import RegistryModel
import Testing

@Suite("ManifestNegotiation")
struct ManifestNegotiationTests {
    static let dockerOnly = "\(MediaType.dockerManifest), \(MediaType.dockerManifestList)"

    @Test func ociManifestWithoutOCIAcceptIsNotAcceptable() {
        let negotiation = ManifestNegotiation(acceptHeaders: [Self.dockerOnly])
        for byTag in [true, false] {
            guard case .notAcceptable(let message) = negotiation.decide(mediaType: MediaType.ociManifest, requestedByTag: byTag) else {
                Issue.record("expected notAcceptable")
                continue
            }
            #expect(message.contains("OCI manifest"))
        }
    }

    @Test func ociIndexWithoutOCIAcceptIsNotAcceptable() {
        let negotiation = ManifestNegotiation(acceptHeaders: [MediaType.ociManifest])
        guard case .notAcceptable(let message) = negotiation.decide(mediaType: MediaType.ociIndex, requestedByTag: true) else {
            Issue.record("expected notAcceptable")
            return
        }
        #expect(message.contains("OCI index"))
    }

    @Test func ociAcceptedIsServed() {
        let negotiation = ManifestNegotiation(acceptHeaders: [MediaType.upstreamManifestAccept])
        #expect(negotiation.decide(mediaType: MediaType.ociManifest, requestedByTag: true) == .serve)
        #expect(negotiation.decide(mediaType: MediaType.ociIndex, requestedByTag: true) == .serve)
        #expect(negotiation.decide(mediaType: MediaType.dockerManifestList, requestedByTag: true) == .serve)
        #expect(negotiation.decide(mediaType: MediaType.dockerManifest, requestedByTag: true) == .serve)
    }

    @Test(arguments: [
        ["application/vnd.oci.image.manifest.v1+json;q=0.9"],
        ["application/vnd.oci.image.manifest.v1+json ; q=0.5"],
        ["  application/vnd.oci.image.manifest.v1+json  ;q=1,application/json"],
        ["text/html;q=0.1,\tapplication/vnd.oci.image.manifest.v1+json;\tq=0.8 , */*;q=0.01"],
        ["APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON"],
        ["application/json", "application/vnd.oci.image.manifest.v1+json"],
        ["application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json; q=0.3"],
    ])
    func parametersSpacesAndMultipleHeaders(_ headers: [String]) {
        let negotiation = ManifestNegotiation(acceptHeaders: headers)
        #expect(negotiation.accepted.contains(MediaType.ociManifest))
        #expect(negotiation.decide(mediaType: MediaType.ociManifest, requestedByTag: true) == .serve)
    }

    /// A combining mark after `,` or `;` formed one Character with it, so the header was not
    /// split there and the OCI type went unseen (found by the property suite).
    @Test func separatorsFollowedByCombiningMarksStillSeparate() {
        let negotiation = ManifestNegotiation(acceptHeaders: ["text/html,\u{301}x/y, application/vnd.oci.image.manifest.v1+json;\u{D4A}q=1"])
        #expect(negotiation.accepted.contains(MediaType.ociManifest))
        #expect(negotiation.accepted.contains("text/html"))
        #expect(negotiation.accepted.allSatisfy { !$0.unicodeScalars.contains(";") && !$0.unicodeScalars.contains(",") })
    }

    @Test func acceptedSetIsNormalized() {
        let negotiation = ManifestNegotiation(acceptHeaders: [" A/B ; q=1 , c/d,,", "E/F", ""])
        #expect(negotiation.accepted == ["a/b", "c/d", "e/f"])
    }

    @Test func dockerListByTagWithoutListAcceptServesLinuxAmd64Child() {
        let negotiation = ManifestNegotiation(acceptHeaders: [MediaType.dockerManifest])
        #expect(negotiation.decide(mediaType: MediaType.dockerManifestList, requestedByTag: true) == .serveLinuxAmd64Child)
    }

    @Test func dockerListByDigestIsServed() {
        let negotiation = ManifestNegotiation(acceptHeaders: [MediaType.dockerManifest])
        #expect(negotiation.decide(mediaType: MediaType.dockerManifestList, requestedByTag: false) == .serve)
    }

    @Test func dockerListWithListAcceptIsServed() {
        let negotiation = ManifestNegotiation(acceptHeaders: [Self.dockerOnly])
        #expect(negotiation.decide(mediaType: MediaType.dockerManifestList, requestedByTag: true) == .serve)
    }

    @Test(arguments: [[], [""], ["text/plain"], [MediaType.ociIndex]])
    func dockerV2IsAlwaysServed(_ headers: [String]) {
        let negotiation = ManifestNegotiation(acceptHeaders: headers)
        #expect(negotiation.decide(mediaType: MediaType.dockerManifest, requestedByTag: true) == .serve)
        #expect(negotiation.decide(mediaType: MediaType.dockerManifest, requestedByTag: false) == .serve)
    }

    @Test(arguments: [[], [""], [" , ;q=1"]])
    func emptyAcceptWithOCIIsNotAcceptable(_ headers: [String]) {
        let negotiation = ManifestNegotiation(acceptHeaders: headers)
        #expect(negotiation.accepted.isEmpty)
        guard case .notAcceptable = negotiation.decide(mediaType: MediaType.ociManifest, requestedByTag: true) else {
            Issue.record("expected notAcceptable for an OCI manifest")
            return
        }
        guard case .notAcceptable = negotiation.decide(mediaType: MediaType.ociIndex, requestedByTag: false) else {
            Issue.record("expected notAcceptable for an OCI index")
            return
        }
        #expect(negotiation.decide(mediaType: MediaType.dockerManifestList, requestedByTag: true) == .serveLinuxAmd64Child)
    }

    @Test func unknownMediaTypesAreServed() {
        let negotiation = ManifestNegotiation(acceptHeaders: [])
        #expect(negotiation.decide(mediaType: MediaType.dockerSchema1Signed, requestedByTag: true) == .serve)
        #expect(negotiation.decide(mediaType: "application/vnd.example+json", requestedByTag: false) == .serve)
    }

    @Test func mediaTypeHelpers() {
        #expect(MediaType.isIndex(MediaType.ociIndex))
        #expect(MediaType.isIndex(MediaType.dockerManifestList))
        #expect(!MediaType.isIndex(MediaType.ociManifest))
        #expect(!MediaType.isIndex(MediaType.dockerManifest))
        let upstream = ManifestNegotiation(acceptHeaders: [MediaType.upstreamManifestAccept]).accepted
        #expect(upstream == [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest])
    }
}
