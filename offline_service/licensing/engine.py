"""The processing engine: parse and verify, decide in one transaction, then sign.

Time is passed in; storage is the ``Store`` interface; keys come from the ``Keyring``. Work is done
in three phases so the write lock is held only for the decisions: (1) parse and verify signatures
with no lock, (2) decide and record every request of the chunk in one write transaction, (3) sign
the responses after commit. A crash between (2) and (3) loses nothing: processing the same files
again reissues the same activations without counting them twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import NamedTuple, Protocol, assert_never

from offline_service import audit
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws
from offline_service.fileformat.keyring import Keyring, Signer
from offline_service.fileformat.messages import Kind, Request, Response, parse_request, response_json
from offline_service.ids import new_id
from offline_service.licensing.decisions import (
    Policy,
    Verdict,
    check_request_time,
    decide_activation,
    decide_deactivation,
    decide_trial,
    response_validity,
)
from offline_service.licensing.models import Activation, License, Product, Trial
from offline_service.licensing.representations import license_json
from offline_service.notifications.events import crossed_near_limit, near_limit
from offline_service.store import Store, Transaction
from offline_service.webhooks import events as webhooks

__all__ = ["Engine", "Observer", "Outcome", "Pending"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one request file. ``response`` is the signed response (compact JWS)."""

    code: Code  # Code.OK or the code of the rejection
    message: str = ""
    kind: Kind | None = None
    product_id: str | None = None
    license_id: str | None = None
    activation_id: str | None = None
    response: str | None = None
    reissued: bool = False
    trial_ends_at: int | None = None
    # The verified request, when it could be parsed: adapters read it (hostname, fingerprint)
    # instead of parsing and verifying the file a second time.
    request: Request | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.code is Code.OK


class Observer(Protocol):
    """What the engine reports to whoever counts (the server's metrics, web/metrics.py). Passed
    in, never looked up: an engine without one does no timing at all."""

    def decided(self, outcome: Outcome) -> None:
        """One request file's final outcome (granted, reissued or refused), after its commit."""

    def transaction(self, seconds: float) -> None:
        """One write transaction, from asking for the writers' lock to its commit."""

    def signed(self, seconds: float) -> None:
        """One response signature (Ed25519 and the JWS encoding around it)."""


# A license filter lets an adapter narrow which licenses a caller may use (portal users).
LicenseFilter = Callable[[License], bool]


@dataclass(slots=True)
class Pending:
    """One request file on its way through the three phases (``Engine.verify_many``,
    ``decide_many``, ``sign_many``): its verified request, or the outcome that refused it, or the
    grant (what to sign, by which key, and whether it is a reissue). A grant's Outcome is made
    once, when it is signed. Opaque to callers: they hand it from phase to phase."""

    request: Request | None
    outcome: Outcome | None = None  # a refusal
    signer: Signer | None = None
    response: Response | None = None  # a grant
    reissued: bool = False


class Engine:
    """Processes activation, deactivation and trial requests for one account at a time.

    Long-lived (one per server process); its only state of its own, ``_headers`` (kid -> encoded
    protected header), is immutable data derived from the kid, the same in every process. Every
    limit (seats, nonces, trials) is decided in the store transaction that records it."""

    def __init__(
        self,
        *,
        store: Store,
        keyring: Keyring,
        policy: Policy | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.policy = policy or Policy()
        self.observer = observer
        self._headers: dict[str, str] = {}  # kid -> encoded protected header

    def process(
        self,
        data: bytes,
        *,
        account_id: str,
        now: int,
        response_validity: int | None = None,
        actor: str = "system",
        license_filter: LicenseFilter | None = None,
        kinds: frozenset[Kind] | None = None,
    ) -> Outcome:
        """Process one request file."""
        return self.process_many(
            [data],
            account_id=account_id,
            now=now,
            response_validity=response_validity,
            actor=actor,
            license_filter=license_filter,
            kinds=kinds,
        )[0]

    def process_many(
        self,
        files: Sequence[bytes],
        *,
        account_id: str,
        now: int,
        response_validity: int | None = None,
        actor: str = "system",
        license_filter: LicenseFilter | None = None,
        kinds: frozenset[Kind] | None = None,
    ) -> list[Outcome]:
        """Process request files in one write transaction; one Outcome per file, in order.

        ``license_filter`` narrows the licenses a caller may use (others are LICENSE_NOT_FOUND);
        ``kinds`` narrows the request kinds a caller may send (others are refused unrecorded)."""
        _check_validity(response_validity)
        if not files:
            return []  # no transaction for nothing (a batch chunk taken whole from its journal)
        items = self.verify_many(files, now=now, kinds=kinds)
        with self.write() as tx:
            self.decide_many(
                tx,
                items,
                account_id=account_id,
                now=now,
                response_validity=response_validity,
                actor=actor,
                license_filter=license_filter,
            )
        return self.sign_many(items)

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        """The store's write transaction, timed for the observer (if any): phase 2 runs in it."""
        observer = self.observer
        if observer is None:
            with self.store.write() as tx:
                yield tx
            return
        started = perf_counter()
        try:
            with self.store.write() as tx:
                yield tx
        finally:
            observer.transaction(perf_counter() - started)

    # The three phases, for a caller that holds the transaction itself (the API's queue takes the
    # writers' lock only for phase 2). ``process_many`` is the three in a row.

    def verify_many(
        self, files: Sequence[bytes], *, now: int, kinds: frozenset[Kind] | None = None
    ) -> list[Pending]:
        """Phase 1: parse and verify each file; no database, no lock."""
        return [self._parse(data, now, kinds) for data in files]

    def decide_many(
        self,
        tx: Transaction,
        items: Sequence[Pending],
        *,
        account_id: str,
        now: int,
        response_validity: int | None = None,
        actor: str = "system",
        license_filter: LicenseFilter | None = None,
    ) -> None:
        """Phase 2, inside the caller's write transaction (``store.write()``): decide and record
        each item, rejected ones audited too. If the transaction then rolls back, the items must
        not be signed: verify the files again."""
        _check_validity(response_validity)
        requests = [i.request for i in items if i.request is not None]
        tx.preload(
            [(r.product_id, r.nonce, r.fingerprint, r.license_key) for r in requests], account_id=account_id
        )
        # One read per chunk, under the writers' lock (so it holds for the whole chunk): for an
        # account without webhook endpoints, that is all they cost.
        wanted = webhooks.subscribers(tx, account_id)
        for item in items:
            if item.outcome is None:
                assert item.request is not None
                try:
                    item.signer, item.response, item.reissued = self._decide(
                        tx, item.request, account_id, now, response_validity, license_filter, wanted
                    )
                except OfflineServiceError as exc:
                    item.outcome = _rejected(exc, item.request)
            self._audit(tx, item, account_id, now, actor)
        if wanted:
            webhooks.emit(tx, account_id, _events(items, wanted, now), now=now, wanted=wanted)

    def sign_many(self, items: Sequence[Pending]) -> list[Outcome]:
        """Phase 3, after the commit: one Outcome per item, in order, granted ones signed."""
        outcomes = [self._sign(item) for item in items]
        if self.observer is not None:
            for outcome in outcomes:
                self.observer.decided(outcome)
        return outcomes

    # -- phase 1: parse and verify, no lock --------------------------------------------------

    def _parse(self, data: bytes, now: int, kinds: frozenset[Kind] | None) -> Pending:
        try:
            request = parse_request(data)
        except OfflineServiceError as exc:
            return Pending(request=None, outcome=Outcome(code=exc.code, message=exc.message))
        except (TypeError, ValueError, RecursionError) as exc:
            # parse_request maps every malformed input to its code; this is the last line of
            # defence so that no input, however hostile, escapes as anything but our error.
            return Pending(request=None, outcome=Outcome(code=Code.MALFORMED_REQUEST, message=str(exc)))
        try:
            check_request_time(request, now, self.policy)
            if kinds is not None and request.kind not in kinds:
                wanted = " or ".join(sorted(k.value for k in kinds))
                raise OfflineServiceError(
                    Code.MALFORMED_REQUEST,
                    f"this is {_article(request.kind)} {request.kind} request; only {wanted} requests are taken here",
                )
        except OfflineServiceError as exc:
            return Pending(request=None, outcome=_rejected(exc, request))
        return Pending(request=request)

    # -- phase 2: decide and record, inside the write transaction ----------------------------

    def _decide(
        self,
        tx: Transaction,
        req: Request,
        account_id: str,
        now: int,
        requested_validity: int | None,
        license_filter: LicenseFilter | None,
        wanted: webhooks.Subscribers,
    ) -> tuple[Signer, Response, bool]:
        """The checks every kind shares, then the kind's own decision (one function per kind):
        the key to sign with, the response and whether it is a reissue."""
        product = tx.product(account_id, req.product_id)
        if product is None:
            raise OfflineServiceError(Code.PRODUCT_NOT_FOUND, "no such product in this account")
        # Keys are loaded before anything is recorded, so a key problem changes no state.
        signer = self.keyring.signer(product.id)
        validity = response_validity(requested_validity, product, self.policy)
        issue = _Issue(req=req, kid=signer.kid, now=now, apply_before=now + validity)
        if req.kind is Kind.ACTIVATION:
            response, verdict = _activation(tx, issue, product, account_id, license_filter, wanted)
        elif req.kind is Kind.DEACTIVATION:
            response, verdict = _deactivation(tx, issue, product, account_id, license_filter)
        elif req.kind is Kind.TRIAL:
            response, verdict = _trial(tx, issue, product)
        else:
            assert_never(req.kind)
        return signer, response, verdict is Verdict.REISSUE

    @staticmethod
    def _audit(tx: Transaction, item: Pending, account_id: str, now: int, actor: str) -> None:
        # The entries made here rather than by audit.record: one per request, every detail already
        # text, so its checks and keyword arguments would be cost without use.
        granted = item.response
        if granted is not None:
            assert item.request is not None
            detail = {"fingerprint": item.request.fingerprint}
            if item.reissued:
                detail["reissued"] = "true"
            entry = audit.AuditEntry(
                now,
                actor,
                granted.kind.value,
                Code.OK.value,
                account_id,
                granted.product_id,
                granted.license_id,
                granted.activation_id,
                detail,
            )
        else:
            o = item.outcome
            assert o is not None
            refused = {"fingerprint": item.request.fingerprint} if item.request else {}
            if not o.ok:
                refused["message"] = o.message[:200]
            entry = audit.AuditEntry(
                now,
                actor,
                o.kind.value if o.kind else "unknown",
                o.code.value,
                account_id,
                o.product_id,
                o.license_id,
                o.activation_id,
                refused,
            )
        tx.audit(entry)

    # -- phase 3: sign, after commit ---------------------------------------------------------

    def _sign(self, item: Pending) -> Outcome:
        response, req = item.response, item.request
        if response is None or item.signer is None or req is None:
            assert item.outcome is not None
            return item.outcome
        kid = item.signer.kid
        header = self._headers.get(kid)
        if header is None:
            header = self._headers[kid] = jws.encode_header(
                {"alg": jws.EMITTED_ALG, "typ": jws.RESPONSE_TYP, "kid": kid}
            )
        payload = response_json(response)
        observer = self.observer
        if observer is None:
            token = jws.encode_json(header, payload, item.signer.secret_key)
        else:
            started = perf_counter()
            token = jws.encode_json(header, payload, item.signer.secret_key)
            observer.signed(perf_counter() - started)
        return Outcome(
            code=Code.OK,
            kind=req.kind,
            product_id=req.product_id,
            license_id=response.license_id,
            activation_id=response.activation_id,
            response=token,
            reissued=item.reissued,
            trial_ends_at=response.trial_ends_at,
            request=req,
        )


def _check_validity(response_validity: int | None) -> None:
    if response_validity is not None and response_validity <= 0:
        raise OfflineServiceError(Code.INVALID_ARGUMENT, "response validity must be positive")


# -- the decision of each request kind, inside the write transaction -------------------------


class _Issue(NamedTuple):
    """What every response to ``req`` carries besides its decision: the key and the times. (A
    NamedTuple: one is made per request on the hot path, and it is cheaper than a frozen dataclass.)"""

    req: Request
    kid: str
    now: int
    apply_before: int


def _activation(
    tx: Transaction,
    issue: _Issue,
    product: Product,
    account_id: str,
    license_filter: LicenseFilter | None,
    wanted: webhooks.Subscribers,
) -> tuple[Response, Verdict]:
    """A new activation uses a seat; the same machine again (or a replayed file) is reissued."""
    req, now = issue.req, issue.now
    assert req.license_key is not None
    license = tx.license_by_key(account_id, req.license_key)
    if license is None or (license_filter is not None and not license_filter(license)):
        raise OfflineServiceError(Code.LICENSE_NOT_FOUND, "no license with this key")
    nonce_owner = tx.nonce_activation(product.id, req.nonce)
    replayed = tx.activation(product.id, nonce_owner) if nonce_owner else None
    av = decide_activation(
        license,
        req,
        now,
        live=tx.live_activation(license.id, req.fingerprint),
        replayed=replayed,
    )
    used = license.used_activations
    if av.verdict is Verdict.NEW:
        activation = Activation(
            id=new_id("act"),
            license_id=license.id,
            product_id=product.id,
            fingerprint=req.fingerprint,
            machine_key=req.machine_key,
            machine_key_thumbprint=req.machine_key_thumbprint,
            created_at=now,
            hostname=req.hostname,
            os=req.os,
            app_version=req.app_version,
            metadata=req.metadata,
        )
        tx.insert_activation(activation)
        used += 1
        tx.update_license_usage(
            license.id,
            used_activations=used,
            used_deactivations=license.used_deactivations,
            expires_at=av.expires_at,
        )
        if crossed_near_limit(license.allowed_activations, used - 1, used):  # rare: a few reads then
            updated = license.with_usage(
                used_activations=used, used_deactivations=license.used_deactivations, expires_at=av.expires_at
            )
            near_limit(tx, updated, before=used - 1, activation_id=activation.id, now=now)
            if "license.near_limit" in wanted:
                webhooks.emit(
                    tx,
                    account_id,
                    [("license.near_limit", {**license_json(updated), "activationId": activation.id})],
                    now=now,
                    wanted=wanted,
                )
    else:
        assert av.activation is not None
        activation = av.activation
    if nonce_owner is None:
        tx.record_nonce(product.id, req.nonce, req.kind.value, activation.id, now)
    return _response(issue, activation.id, license=_reread(tx, license)), av.verdict


def _deactivation(
    tx: Transaction, issue: _Issue, product: Product, account_id: str, license_filter: LicenseFilter | None
) -> tuple[Response, Verdict]:
    """A deactivation frees a seat once; deactivating the same activation again is reissued."""
    req, now = issue.req, issue.now
    assert req.activation_id is not None
    found = tx.activation(product.id, req.activation_id)
    license = tx.license_by_id(account_id, found.license_id) if found else None
    if found is None or license is None or (license_filter is not None and not license_filter(license)):
        raise OfflineServiceError(Code.ACTIVATION_NOT_FOUND, "no such activation for this product")
    verdict = decide_deactivation(license, found, req)
    deactivated_at = found.deactivated_at
    if verdict is Verdict.NEW:
        deactivated_at = now
        tx.deactivate(found.id, now)
        tx.update_license_usage(
            license.id,
            used_activations=license.used_activations - 1,
            used_deactivations=license.used_deactivations + 1,
            expires_at=license.expires_at,
        )
        license = _reread(tx, license)
    if tx.nonce_activation(product.id, req.nonce) is None:
        tx.record_nonce(product.id, req.nonce, req.kind.value, found.id, now)
    return _response(issue, found.id, license=license, deactivated_at=deactivated_at), verdict


def _trial(tx: Transaction, issue: _Issue, product: Product) -> tuple[Response, Verdict]:
    """One trial per machine and product; asking again is reissued with the original end."""
    req, now = issue.req, issue.now
    existing = tx.trial(product.id, req.fingerprint)
    verdict, ends_at = decide_trial(product, existing, now)
    if existing is None:
        existing = Trial(
            id=new_id("trl"),
            product_id=product.id,
            fingerprint=req.fingerprint,
            machine_key_thumbprint=req.machine_key_thumbprint,
            created_at=now,
            ends_at=ends_at,
            hostname=req.hostname,
            os=req.os,
            app_version=req.app_version,
        )
        tx.insert_trial(existing)
    return _response(issue, existing.id, trial_ends_at=ends_at), verdict


def _events(
    items: Sequence[Pending], wanted: webhooks.Subscribers, now: int
) -> list[tuple[str, dict[str, object]]]:
    """The webhook events of a decided chunk that some endpoint wants: a new activation, a reissue,
    a deactivation, a new trial (reissued deactivations and trials are no event)."""
    found: list[tuple[str, dict[str, object]]] = []
    for item in items:
        r, req = item.response, item.request
        if r is None or req is None:
            continue
        if r.kind is Kind.ACTIVATION:
            event = "activation.reissued" if item.reissued else "activation.created"
        elif r.kind is Kind.DEACTIVATION and not item.reissued:
            event = "activation.deactivated"
        elif r.kind is Kind.TRIAL and not item.reissued:
            event = "trial.created"
        else:
            continue
        if event not in wanted:
            continue
        data: dict[str, object] = {
            "id": r.activation_id,
            "productId": r.product_id,
            "fingerprint": r.fingerprint,
            "machineKeyThumbprint": r.machine_key_thumbprint,
            "hostname": req.hostname,
            "os": req.os,
            "appVersion": req.app_version,
            "at": now,
        }
        if r.kind is Kind.TRIAL:
            data["endsAt"] = r.trial_ends_at
        else:
            data.update(
                licenseId=r.license_id,
                usedActivations=r.used_activations,
                allowedActivations=r.allowed_activations,
                deactivatedAt=r.deactivated_at,
            )
        found.append((event, data))
    return found


def _reread(tx: Transaction, license: License) -> License:
    """The license as this transaction now holds it (after a usage update)."""
    current = tx.license_by_id(license.account_id, license.id)
    assert current is not None
    return current


def _response(
    issue: _Issue,
    activation_id: str,
    *,
    license: License | None = None,
    trial_ends_at: int | None = None,
    deactivated_at: int | None = None,
) -> Response:
    """The response to ``issue.req``, to be signed by the key ``issue.kid``."""
    req = issue.req
    return Response(
        kind=req.kind,
        kid=issue.kid,
        product_id=req.product_id,
        activation_id=activation_id,
        fingerprint=req.fingerprint,
        machine_key_thumbprint=req.machine_key_thumbprint,
        issued_at=issue.now,
        apply_before=issue.apply_before,
        request_nonce=req.nonce,
        trial_ends_at=trial_ends_at,
        deactivated_at=deactivated_at,
        license_id=license.id if license else None,
        status=license.status.value if license else None,
        expires_at=license.expires_at if license else None,
        allowed_activations=license.allowed_activations if license else None,
        used_activations=license.used_activations if license else None,
        allowed_deactivations=license.allowed_deactivations if license else None,
        used_deactivations=license.used_deactivations if license else None,
        metadata=license.metadata if license else {},
    )


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _rejected(exc: OfflineServiceError, req: Request) -> Outcome:
    return Outcome(code=exc.code, message=exc.message, kind=req.kind, product_id=req.product_id, request=req)
