import Foundation
import Logging
import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import NIOHTTP1
import RegistryModel

/// One pass over a registry's upstreams, in configured order, for one ask.
///
/// The only place upstreams are admitted, sent to and accounted for. Admission checks, in
/// this order: exclusions (the caller's, and remembered bad copies of the object), then the
/// budget (a reservation for a spend, the "everything blocked" check for a free ask), then the
/// circuit. A budget refusal never takes a circuit's half-open trial slot, and a circuit that
/// refuses gives the reservation back.
///
/// When the normal pass asked nobody because every remaining upstream's circuit was open, the
/// walk tries those upstreams anyway, in order ("panic routing", as load balancers do): an
/// upstream that is back serves at once instead of after its cool-down, and one that is still
/// down fails as it would have. What happened to each upstream is kept in ``attempts``, which
/// becomes the request's `skipped` note and, when none serves, the client's error.
///
/// ``next(now:)`` and the `record` methods are the decisions and touch no network;
/// ``send(to:headers:)``, ``reject(_:)`` and ``collect(_:limit:)`` are the thin shell around
/// the upstream client.
struct UpstreamWalk: Sendable {
    let pool: UpstreamPool
    /// What is asked. Callers may move a blob ask's offset between upstreams.
    var ask: UpstreamAsk
    let repository: RepositoryName
    let excluding: Set<Upstream.ID>
    private let candidates: [Upstream]
    private var position = 0
    /// Upstreams passed over only for their circuit, for the panic pass.
    private var circuitSkipped: [Upstream] = []
    private var inPanicPass = false
    /// Upstreams admitted so far (in either pass).
    private(set) var asked = 0
    /// The reservation of the upstream last admitted, until its request is sent.
    private var hold: BudgetHold?
    private(set) var attempts = UpstreamAttempts()
    /// The last manifest GET this walk sent that the upstream counted (a 2xx on a held budget).
    private(set) var spend: ManifestSpend?

    init(pool: UpstreamPool, candidates: [Upstream], ask: UpstreamAsk, repository: RepositoryName, excluding: Set<Upstream.ID> = []) {
        self.pool = pool
        self.candidates = candidates
        self.ask = ask
        self.repository = repository
        self.excluding = excluding
    }

    // MARK: Decisions

    /// The next upstream worth asking, its budget held; nil when none is left. `instant` is
    /// the circuits' clock (tests move it past a cool-down).
    mutating func next(now: Date = Date(), instant: ContinuousClock.Instant = .now) async -> Upstream? {
        if let stale = hold {
            // The previous upstream was admitted but never sent to: give its budget back.
            hold = nil
            await pool.ledger.release(stale)
        }
        while true {
            let upstream: Upstream
            if !inPanicPass, position < candidates.count {
                upstream = candidates[position]
                position += 1
            } else if !inPanicPass {
                guard asked == 0, !circuitSkipped.isEmpty else { return nil }
                inPanicPass = true
                pool.logger.notice("every upstream's circuit is open: trying them anyway, in order", metadata: [
                    "registry": "\(circuitSkipped[0].registry)", "upstreams": "\(circuitSkipped.map(\.name).joined(separator: ", "))",
                ])
                continue
            } else {
                guard !circuitSkipped.isEmpty else { return nil }
                upstream = circuitSkipped.removeFirst()
            }
            if !inPanicPass, let skip = exclusion(of: upstream, now: now) {
                attempts.skipped(upstream, skip)
                continue
            }
            let key = pool.budgetKey(upstream)
            let decision: BudgetDecision = if let key {
                ask.spends ? await pool.ledger.reserve(key, now: now) : await pool.ledger.admitFree(key, now: now)
            } else {
                .granted(nil)
            }
            guard case .granted(let granted) = decision else {
                if case .refused(let until) = decision {
                    if inPanicPass { attempts.unskip(upstream) }
                    attempts.record(upstream, .budget(until))
                }
                continue
            }
            if inPanicPass {
                attempts.unskip(upstream)
            } else if !pool.health.admit(upstream, now: instant) {
                if let granted { await pool.ledger.release(granted) }
                attempts.skipped(upstream, .circuitOpen)
                circuitSkipped.append(upstream)
                continue
            }
            hold = granted
            asked += 1
            return upstream
        }
    }

    /// Why `upstream` is not asked for this object at all, if it is not.
    private func exclusion(of upstream: Upstream, now: Date) -> UpstreamAttempts.Skip? {
        if excluding.contains(upstream.id) { return .excluded("sent a bad copy during this request") }
        if let digest = ask.digest, let until = pool.badCopies.until(upstream.id, digest, now: now) {
            return .excluded("sent a bad copy of this object; not asked for it again until \(UpstreamAttempts.timestamp(until))")
        }
        return nil
    }

    /// Records an answer that says the object is not there (404; 401 and 403 too: registries
    /// answer those for repositories that do not exist).
    mutating func notFound(_ upstream: Upstream, status: Int) {
        attempts.notFound(upstream, status: status)
    }

    /// Records a failure found after the head arrived (digest mismatch, stall, overflow); it
    /// counts against the upstream's health like any failure.
    mutating func fail(_ upstream: Upstream, _ failure: UpstreamAttempts.Failure) {
        attempts.failed(upstream, failure)
        GatewayMetrics.upstreamFailure(upstream, reason: failure.reason)
        pool.recordFailure(upstream, failure.message)
        if failure.kind == .digestMismatch, let digest = ask.digest {
            pool.badCopies.remember(upstream.id, digest)
        }
    }

    /// The `skipped` note of the request: what happened before the upstream that served.
    var note: String? { attempts.isEmpty ? nil : attempts.description }

    /// The error for the client when no upstream served.
    func clientError(notFound: RegistryError) -> RegistryError {
        attempts.clientError(notFound: notFound)
    }

    // MARK: Shell

    /// Sends the ask to `upstream` (just returned by ``next(now:)``) and accounts for the
    /// answer: the budget hold is settled, announced limits and 429s reach the ledger, and
    /// health learns of transport failures and 5xx answers. Returns nil (recorded) when no
    /// answer arrived.
    mutating func send(to upstream: Upstream, headers: HTTPHeaders = [:]) async -> UpstreamResponse? {
        let held = hold
        hold = nil
        let request = ask.request(on: upstream, repository: repository, headers: headers)
        GatewayMetrics.upstreamRequest(upstream, kind: ask.kind, method: request.method.rawValue)
        let response: UpstreamResponse
        do {
            response = try await pool.client.send(request, to: upstream)
        } catch {
            if let held { await pool.ledger.settle(held, answer: nil, now: Date()) }
            let failure = UpstreamAttempts.Failure(error)
            attempts.failed(upstream, failure)
            GatewayMetrics.upstreamFailure(upstream, reason: failure.reason)
            pool.recordFailure(upstream, error.description)
            return nil
        }
        let now = Date()
        let answer = BudgetAnswer(status: response.status, headers: response.headers, now: now)
        if let held {
            let spent = (200..<300).contains(response.status)
            if spent { GatewayMetrics.manifestSpend(upstream) }
            await pool.ledger.settle(held, answer: answer, now: now)
            if spent {
                spend = ManifestSpend(upstream: upstream.name, metered: await pool.budgetStatus(upstream, now: now)?.limit != nil)
            }
        } else if let key = pool.budgetKey(upstream), ask.isManifest || response.status == 429 {
            await pool.ledger.observe(key, answer: answer, manifestGET: false, now: now)
        }
        if response.status == 429 { GatewayMetrics.upstreamFailure(upstream, reason: .rateLimited) }
        if response.status >= 500 {
            GatewayMetrics.upstreamFailure(upstream, reason: .serverError)
            pool.recordFailure(upstream, "answered \(response.status)")
        } else {
            pool.recordSuccess(upstream)
        }
        return response
    }

    /// Drains and records an answer the caller will not use: 404, 401 and 403 are "not
    /// found", anything else a failure.
    mutating func reject(_ response: UpstreamResponse) async {
        await response.discardBody()
        if [404, 401, 403].contains(response.status) {
            notFound(response.upstream, status: response.status)
        } else {
            attempts.failed(response.upstream, .status(response.status))
        }
    }

    /// Reads a small body (a manifest, a listing); records a stall or an overflow as a failure
    /// of that upstream and returns nil.
    mutating func collect(_ response: UpstreamResponse, limit: Int) async -> ByteBuffer? {
        do {
            return try await response.collect(limit: limit)
        } catch {
            let classified = UpstreamClient.classify(error)
            fail(response.upstream, UpstreamAttempts.Failure(classified))
            return nil
        }
    }
}

extension UpstreamWalk {
    /// Takes over what another walk recorded (a single-upstream GET inside this walk's HEAD
    /// pass), so the note and the client's error tell the whole story.
    mutating func absorb(_ other: UpstreamWalk) {
        for entry in other.attempts.entries { attempts.append(entry) }
    }

    /// Records why an upstream that answered still did not serve (for example: the manifest
    /// its HEAD named could not be fetched), without counting against its health.
    mutating func note(_ upstream: Upstream, _ message: String, status: Int?) {
        attempts.failed(upstream, .init(status.map { _ in .status } ?? .badResponse, message, status: status))
    }
}
