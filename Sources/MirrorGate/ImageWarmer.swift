import Foundation
import RegistryModel
import Synchronization

/// Pulls one image through a gateway so that the gateway caches it: the manifest, every
/// child manifest of an index (or only the one for `platform`), then each config and layer
/// blob, a few at a time, streamed, hashed and discarded.
struct ImageWarmer: Sendable {
    /// What happened to one image.
    struct Outcome: Sendable {
        /// The image as the user wrote it.
        var label: String
        /// The top manifest's digest, once resolved.
        var digest: Digest?
        /// Config and layer blobs fetched and verified.
        var blobs = 0
        /// Their bytes.
        var bytes: UInt64 = 0
        /// How long the image took.
        var duration: Duration = .zero
        /// Why the image failed, `nil` when it succeeded.
        var failure: String?
    }

    let client: GatewayClient
    /// Only this platform's manifest of an index, `nil` for all.
    let platform: ImagePlatform?
    /// Blobs fetched at once.
    let concurrency: Int

    /// Nested indexes followed at most this deep.
    static let maxDepth = 3

    /// Warms `image`, reporting to `progress`.
    func warm(_ image: ImageReference, progress: ProgressBar) async -> Outcome {
        var outcome = Outcome(label: progress.label)
        do {
            let top = try await client.manifest(image, reference: image.reference)
            outcome.digest = top.digest
            progress.phase("reading manifests")
            var blobs: [ManifestDocument.Descriptor] = []
            var seen = Set<String>()
            try await collect(top, image: image, depth: 0, into: &blobs, seen: &seen)
            let total = blobs.reduce(UInt64(0)) { $0 + UInt64(max(0, $1.size)) }
            progress.plan(blobs: blobs.count, bytes: total)

            let failures = await fetch(blobs, image: image, progress: progress)
            outcome.blobs = blobs.count - failures.count
            outcome.bytes = progress.snapshot.bytesDone
            if let first = failures.first {
                outcome.failure = failures.count == 1
                    ? first
                    : "\(failures.count) of \(blobs.count) blobs failed; first: \(first)"
            }
        } catch {
            outcome.failure = "\(error)"
        }
        outcome.duration = progress.elapsed
        return outcome
    }

    /// Adds the blobs of `manifest` (following an index's children) to `blobs`, each digest
    /// once.
    private func collect(
        _ manifest: GatewayClient.FetchedManifest, image: ImageReference, depth: Int,
        into blobs: inout [ManifestDocument.Descriptor], seen: inout Set<String>
    ) async throws {
        let (document, kind) = try ManifestDocument.decode(manifest)
        switch kind {
        case .image:
            for blob in [document.config].compactMap({ $0 }) + (document.layers ?? []) {
                // Non-distributable layers live at their `urls`, not in the registry.
                guard blob.urls?.isEmpty ?? true, !(blob.mediaType ?? "").contains("foreign"),
                      !(blob.mediaType ?? "").contains("nondistributable")
                else { continue }
                if seen.insert(blob.digest).inserted { blobs.append(blob) }
            }
        case .index:
            guard depth < Self.maxDepth else {
                throw GatewayClient.Failure("indexes nested more than \(Self.maxDepth) deep under \(manifest.digest)")
            }
            let children = document.manifests ?? []
            let chosen: [ManifestDocument.Descriptor]
            if let platform {
                chosen = children.filter { child in child.imagePlatform.map(platform.matches) ?? false }
                if chosen.isEmpty, depth == 0 {
                    let offered = children.compactMap { $0.imagePlatform?.description }
                    throw GatewayClient.Failure("no manifest for platform \(platform) in index \(manifest.digest) (it has \(offered.isEmpty ? "no platforms" : offered.joined(separator: ", ")))")
                }
            } else {
                chosen = children
            }
            for child in chosen {
                let digest = try Digest(parsing: child.digest)
                let fetched = try await client.manifest(image, reference: .digest(digest))
                try await collect(fetched, image: image, depth: depth + 1, into: &blobs, seen: &seen)
            }
        }
    }

    /// Fetches `blobs`, ``concurrency`` at a time; returns one message per failed blob.
    private func fetch(_ blobs: [ManifestDocument.Descriptor], image: ImageReference, progress: ProgressBar) async -> [String] {
        await withTaskGroup(of: String?.self) { group in
            var pending = blobs[...]
            var failures: [String] = []
            func startNext() {
                guard let blob = pending.popFirst() else { return }
                group.addTask {
                    defer { progress.blobFinished() }
                    do {
                        let digest = try Digest(parsing: blob.digest)
                        try await client.blob(image, digest: digest, size: blob.size) { progress.add(bytes: $0) }
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
            }
            for _ in 0..<max(1, concurrency) { startNext() }
            for await result in group {
                if let result { failures.append(result) }
                startNext()
            }
            return failures
        }
    }
}
