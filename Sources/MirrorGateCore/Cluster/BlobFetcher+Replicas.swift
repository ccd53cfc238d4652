import Foundation
import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import RegistryModel

/// The I/O shell of ``ReplicaFetchMachine``: one blob fetch on a replica that shares fetch
/// leases with others. The lease winner fetches from the upstreams as a lone gateway would,
/// heartbeating; the others stream the winner's in-flight blob from its peer endpoint into
/// their own ``InFlightBlob`` (their clients follow it as on one replica, the newest chunk
/// withheld until the digest verifies here), and take the fetch over when the winner dies.
extension BlobFetcher {
    func fetchAcrossReplicas(_ job: Job, cluster: ReplicaCluster) async {
        let digest = job.blob.digest
        let key = LeaseKey.blob(registry: job.registry, digest: digest)
        var machine = ReplicaFetchMachine()
        var partial: Partial?
        var restart = false
        var action = machine.start
        while true {
            switch action {
            case .claim:
                do {
                    let claim = try await cluster.leases.claim(key, owner: cluster.owner, ttl: cluster.ttl)
                    var stored = false
                    if case .won = claim, (try? await blobs.size(of: digest)) != nil {
                        // As on one replica: a stored blob serves this repository once it is
                        // known to hold it; otherwise the fetch is the confirmation.
                        stored = await links.isLinked(digest, registry: job.registry, repository: job.repository.value)
                    }
                    action = machine.next(.claimed(claim, stored: stored))
                } catch {
                    logger.warning("fetch lease store failed; this replica fetches the blob alone", metadata: ["digest": "\(digest)", "error": "\(error)"])
                    action = machine.next(.storeFailed)
                }

            case .fetch(let lease):
                if let partial {
                    logger.info("taking over a blob fetch from another replica", metadata: [
                        "digest": "\(digest)", "from": "\(partial.written)", "lease": "\(lease.map { "\($0.generation)" } ?? "none")",
                    ])
                }
                await fetchHoldingLease(job, resuming: partial, lease: lease, cluster: cluster)
                return

            case .serveStored(let lease):
                // The holder before us committed it between our miss and our claim.
                if let size = try? await blobs.size(of: digest) {
                    await partial?.spool.discard()
                    try? await cluster.leases.release(lease)
                    await links.link(digest, registry: job.registry, repository: job.repository.value)
                    job.blob.finishStored(in: blobs, size: size)
                    return
                }
                await fetchHoldingLease(job, resuming: partial, lease: lease, cluster: cluster)
                return

            case .follow(let holder):
                let outcome: ReplicaFetchMachine.FollowOutcome
                do {
                    outcome = try await follow(holder, job: job, partial: &partial, restart: &restart, peers: cluster.peers)
                } catch {
                    failInStorage(job, error)
                    return
                }
                action = machine.next(.followed(outcome))

            case .restartAndClaim:
                await partial?.spool.discard()
                partial = nil
                restart = true
                action = .claim

            case .inspect:
                do {
                    action = machine.next(.inspected(try await cluster.leases.holder(key)))
                } catch {
                    action = machine.next(.storeFailed)
                }

            case .wait(let holder, let timeout):
                do {
                    action = machine.next(.waited(try await cluster.leases.waitForRelease(key, generation: holder.generation, timeout: timeout)))
                } catch {
                    action = machine.next(.storeFailed)
                }

            case .finish:
                guard let done = partial else { return }
                await finishFollowed(job, done, from: machine.following)
                return
            }
            if Task.isCancelled {
                await partial?.spool.discard()
                job.blob.finish(.failed(RegistryError(.blobUnknown, status: 503, "the gateway is stopping")), size: nil)
                return
            }
        }
    }

    /// The upstream fetch with `lease` heartbeated beside it (progress: the visible bytes).
    private func fetchHoldingLease(_ job: Job, resuming: Partial?, lease: FetchLease?, cluster: ReplicaCluster) async {
        guard let lease else {
            await fetchFromUpstreams(job, resuming: resuming, lease: nil)
            return
        }
        await withDiscardingTaskGroup { group in
            group.addTask { [logger] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: cluster.heartbeat)
                    if Task.isCancelled { return }
                    let (size, visible) = job.blob.progress
                    do {
                        if try await !cluster.leases.heartbeat(lease, ttl: cluster.ttl, size: size, bytesDone: visible) {
                            // Fenced: another replica took over. Finish for our own clients;
                            // the commit is idempotent (same key, same verified bytes).
                            logger.warning("blob fetch lease lost to another replica", metadata: ["digest": "\(job.blob.digest)"])
                            return
                        }
                    } catch {
                        logger.warning("fetch lease heartbeat failed", metadata: ["digest": "\(job.blob.digest)", "error": "\(error)"])
                    }
                }
            }
            await fetchFromUpstreams(job, resuming: resuming, lease: (lease, cluster))
            group.cancelAll()
        }
    }

    /// Streams `holder`'s copy into this replica's blob from the bytes already spooled,
    /// hashing as it goes; every chunk but the newest becomes visible to this replica's
    /// clients. Storage failures are thrown.
    private func follow(
        _ holder: LeaseHolder, job: Job, partial: inout Partial?, restart: inout Bool, peers: PeerClient
    ) async throws(StorageError) -> ReplicaFetchMachine.FollowOutcome {
        let blob = job.blob
        if partial == nil {
            let spool = try await blobs.makeSpool(for: blob.digest)
            blob.begin(spool: spool, restart: restart)
            partial = Partial(spool: spool, hasher: ContentHasher(blob.digest.algorithm), written: 0, size: nil)
        }
        guard var state = partial else { return .broken(progressed: false) }
        defer { partial = state }
        let before = state.written
        let stream: PeerClient.Stream
        do throws(PeerClient.Failure) {
            stream = try await peers.blob(blob.digest, registry: job.registry, at: holder.ownerURL, from: state.written)
        } catch {
            logger.info("peer stream unavailable", metadata: ["digest": "\(blob.digest)", "peer": "\(holder.ownerURL)", "error": "\(error)"])
            return .broken(progressed: false)
        }
        if let size = stream.size {
            if let known = state.size, known != size { return .mismatch }
            if size > limits.maxBlobSize { return .mismatch }
            state.size = size
            blob.publishHead(size: size)
        }
        do {
            for try await chunk in stream.body {
                if let size = state.size, state.written + UInt64(chunk.readableBytes) > size { return .mismatch }
                state.hasher.update(chunk)
                try await state.spool.write(chunk)
                blob.publishVisible(state.written)
                state.written += UInt64(chunk.readableBytes)
            }
        } catch let storage as StorageError {
            throw storage
        } catch {
            logger.info("peer stream broke", metadata: [
                "digest": "\(blob.digest)", "peer": "\(holder.ownerURL)", "at": "\(state.written)", "error": "\(error)",
            ])
            return .broken(progressed: state.written > before)
        }
        if let size = state.size, state.written < size { return .broken(progressed: state.written > before) }
        return state.hasher.finalize() == blob.digest ? .verified : .mismatch
    }

    /// The followed bytes verified. Storage is shared, so the holder has normally committed
    /// them; when it has not (it died after sending the last byte), this replica does: bytes
    /// first, the row after.
    private func finishFollowed(_ job: Job, _ done: Partial, from holder: LeaseHolder?) async {
        let digest = job.blob.digest
        do {
            if (try? await blobs.size(of: digest)) != nil {
                await done.spool.discard()
            } else {
                try await blobs.commit(done.spool, verifiedAs: digest)
                let now = Date()
                try? await metadata.saveObject(ObjectRecord(digest: digest, size: done.written, mediaType: nil, createdAt: now, lastAccess: now))
                await events?.committed()
            }
        } catch {
            // The bytes verified; only this replica's copy failed. Its clients still get them.
            logger.warning("could not store a blob followed from another replica", metadata: ["digest": "\(digest)", "error": "\(error)"])
        }
        await links.link(digest, registry: job.registry, repository: job.repository.value)
        job.blob.finish(.verified, size: done.written, source: "replica \(holder?.owner ?? "?")")
        logger.info("blob fetch finished", metadata: [
            "digest": "\(digest)", "registry": "\(job.registry)", "repository": "\(job.repository)",
            "upstream": "-", "peer": "\(holder?.ownerURL ?? "-")",
        ])
    }

    private func failInStorage(_ job: Job, _ error: StorageError) {
        events?.storageFailed(error)
        logger.error("blob fetch failed in storage", metadata: ["digest": "\(job.blob.digest)", "error": "\(error.logDescription)"])
        job.blob.finish(.failed(RegistryError(.blobUnknown, status: 503, "cache storage failed (\(error.summary)); retry: the gateway now passes blobs through")), size: nil)
    }
}
