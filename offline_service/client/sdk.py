"""The client SDK: make signed requests, verify and store responses, and check the stored activation.

Only PyNaCl and the standard library are needed, so a vendor can embed this in an offline app.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import nacl.bindings

from offline_service._files import write_atomic
from offline_service.client import machine as _machine
from offline_service.client._text import utc as _utc
from offline_service.client.pinning import pinned_jwks, pinned_keys
from offline_service.client.state import Pending, State, StateDir
from offline_service.client.verdicts import (
    check_answers,
    check_license,
    check_request,
    counts,
    high_water_mark,
    peek,
    stale,
    status_doc,
    witness_of,
)
from offline_service.client.witness import Witness, WitnessStore, default_witness_dir
from offline_service.errors import Code, OfflineServiceError
from offline_service.fileformat import jws, messages
from offline_service.fileformat.messages import Kind, Response
from offline_service.ids import new_nonce

__all__ = ["DEFAULT_CLOCK_OFFSET", "Client"]

DEFAULT_CLOCK_OFFSET = 600
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Failures of the installation itself rather than verdicts on the license: status() raises these.
_ENVIRONMENT_CODES = frozenset({Code.INSECURE_KEY_FILE, Code.KEY_ERROR, Code.STORAGE_ERROR})


def _fail(code: Code, message: str) -> OfflineServiceError:
    return OfflineServiceError(code, message)


class Client:
    """One installation of a licensed app, its state kept in ``state_dir``.

    ``jwks`` is the vendor's public key set; an app should pass the copy it ships with, because the
    copy pinned in the state directory is only as trustworthy as that directory.

    ``witness_dir`` holds the second copy of the clock high-water mark and of the activation and
    deactivation counts (``witness.py``); by default a folder in the user's configuration folder.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        jwks: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
        allowed_clock_offset: int = DEFAULT_CLOCK_OFFSET,
        machine_id: Callable[[], str] = _machine.machine_id,
        witness_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if type(allowed_clock_offset) is not int:
            raise TypeError("allowed_clock_offset must be an int")
        if allowed_clock_offset < 0:
            raise ValueError("allowed_clock_offset must not be negative")
        self._dir = StateDir(state_dir)
        self._jwks = jwks
        self._clock = clock
        self._offset = allowed_clock_offset
        self._machine_id = machine_id
        self._witnesses = WitnessStore(
            witness_dir if witness_dir is not None else default_witness_dir(os.environ)
        )

    @property
    def state_dir(self) -> Path:
        return self._dir.path

    @property
    def witness_dir(self) -> Path:
        return self._witnesses.directory

    def _now(self) -> int:
        return int(self._clock())

    # -- requests --------------------------------------------------------------------------------

    def activation_request(
        self,
        *,
        product_id: str,
        license_key: str,
        fingerprint: str | None = None,
        hostname: str | None = None,
        os_name: str | None = None,
        app_version: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """A signed activation request (compact JWS) for ``license_key``; remembered as pending."""
        license_key = license_key.strip()
        if not license_key:
            raise _fail(Code.INVALID_ARGUMENT, "the license key is empty")
        return self._request(
            Kind.ACTIVATION,
            product_id=product_id,
            fingerprint=fingerprint,
            hostname=hostname,
            os_name=os_name,
            app_version=app_version,
            metadata=metadata,
            license_key=license_key,
        )

    def trial_request(
        self,
        *,
        product_id: str,
        fingerprint: str | None = None,
        hostname: str | None = None,
        os_name: str | None = None,
        app_version: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """A signed trial request (compact JWS); remembered as pending."""
        return self._request(
            Kind.TRIAL,
            product_id=product_id,
            fingerprint=fingerprint,
            hostname=hostname,
            os_name=os_name,
            app_version=app_version,
            metadata=metadata,
        )

    def _request(
        self,
        kind: Kind,
        *,
        product_id: str,
        fingerprint: str | None,
        hostname: str | None,
        os_name: str | None,
        app_version: str,
        metadata: Mapping[str, str] | None,
        license_key: str | None = None,
    ) -> str:
        state = self._dir.load()
        override = fingerprint is not None
        fp = fingerprint if fingerprint is not None else _machine.fingerprint(product_id, self._machine_id())
        witness = self._witness(state, self._dir.machine_key())
        if stale(state, witness):
            # Restored from an earlier copy: what it holds was superseded or deactivated since, so only
            # a new request may follow, counted from where the witness is.
            assert witness is not None
            state = replace(
                state,
                response=None,
                pending=(),
                activations=witness.activations,
                deactivations=witness.deactivations,
            )
        if state.response is not None:
            if (state.product_id, state.fingerprint) != (product_id, fp):
                raise _fail(
                    Code.CONFLICT,
                    f"this state directory holds an activation of product {state.product_id} with fingerprint"
                    f" {state.fingerprint}; deactivate it first or use another state directory",
                )
            if kind is Kind.TRIAL and peek(state.response).get("kind") == Kind.ACTIVATION.value:
                raise _fail(Code.CONFLICT, "this installation is already activated with a license")
        seed = self._dir.ensure_machine_key()
        token = self._sign(
            seed,
            kind,
            product_id=product_id,
            fingerprint=fp,
            hostname=hostname,
            os_name=os_name,
            app_version=app_version,
            metadata=metadata,
            license_key=license_key,
        )
        request = check_request(token)
        if (state.product_id, state.fingerprint) != (product_id, fp):
            # Requests for another product or fingerprint can never match a response any more.
            state = replace(state, product_id=product_id, fingerprint=fp, pending=())
        state = replace(state, fingerprint_override=override)
        self._dir.save(
            state.with_pending(Pending(kind=kind, nonce=request.nonce, issued_at=request.issued_at))
        )
        return token

    def _sign(
        self,
        seed: bytes,
        kind: Kind,
        *,
        product_id: str,
        fingerprint: str,
        hostname: str | None = None,
        os_name: str | None = None,
        app_version: str = "",
        metadata: Mapping[str, str] | None = None,
        license_key: str | None = None,
        activation_id: str | None = None,
    ) -> str:
        public_key, secret_key = nacl.bindings.crypto_sign_seed_keypair(seed)
        payload = messages.request_payload(
            kind=kind,
            product_id=product_id,
            fingerprint=fingerprint,
            issued_at=self._now(),
            nonce=new_nonce(),
            hostname=_CONTROL.sub("", socket.gethostname() if hostname is None else hostname)[:255],
            os=_CONTROL.sub("", platform.platform() if os_name is None else os_name)[:128],
            app_version=app_version,
            metadata=metadata,
            license_key=license_key,
            activation_id=activation_id,
        )
        header = {"alg": jws.EMITTED_ALG, "typ": jws.REQUEST_TYP, "jwk": jws.okp_jwk(public_key)}
        return jws.encode(header, payload, secret_key)

    # -- responses -------------------------------------------------------------------------------

    def activate(self, response: bytes, *, jwks: Mapping[str, Any] | None = None) -> Response:
        """Verify an activation or trial response and store it. Nothing is stored if any check fails.

        ``jwks`` defaults to the one given to the constructor.
        """
        state = self._dir.load()
        seed = self._dir.machine_key()
        product_id = state.product_id
        if product_id is None or seed is None:
            raise _fail(
                Code.WRONG_MACHINE,
                f"no request was made with state directory {self.state_dir}; use the one the request came from",
            )
        keys = pinned_keys(self._trusted(jwks, state), product_id)
        resp = messages.parse_response(response, keys)
        if resp.kind is Kind.DEACTIVATION:
            raise _fail(
                Code.MALFORMED_RESPONSE,
                "this is a deactivation receipt, not an activation; check it with `offline-client receipt`",
            )
        self._check_binding(resp, state, seed, this_machine=True)
        witness = self._witness(state, seed)
        if stale(state, witness):
            raise _fail(
                Code.UNEXPECTED_RESPONSE,
                f"the state directory {self.state_dir} is older than this installation's last activation or"
                " deactivation (it was restored from a copy); make a new request",
            )
        check_answers(resp, state)
        now = self._now()
        mark = high_water_mark(state, witness)
        self._check_clock(resp, mark, now)
        if now >= resp.apply_before:
            raise _fail(
                Code.RESPONSE_EXPIRED,
                f"the response had to be applied before {_utc(resp.apply_before)}; make a new request",
            )
        check_license(resp, max(now, mark))
        if (
            resp.kind is Kind.TRIAL
            and state.response is not None
            and peek(state.response).get("kind") == Kind.ACTIVATION.value
        ):
            raise _fail(
                Code.CONFLICT, "this installation is activated with a license; a trial cannot replace it"
            )
        answered = any(p.nonce == resp.request_nonce for p in state.pending)
        activations, deactivations = counts(state, witness)
        new = replace(
            state,
            pending=tuple(p for p in state.pending if p.nonce != resp.request_nonce),
            response=jws.unarmor(bytes(response)).decode("ascii"),
            jwks=pinned_jwks(keys, product_id),
            last_seen=max(mark, now, resp.issued_at),
            activations=activations + (1 if answered else 0),
            deactivations=deactivations,
        )
        # The state first: a crash between the two writes leaves the witness behind, which the next
        # check raises, rather than ahead, which would refuse the activation just applied.
        self._dir.save(new)
        self._witnesses.save(product_id, seed, witness_of(new))
        return resp

    def verify_receipt(self, response: bytes, *, jwks: Mapping[str, Any] | None = None) -> Response:
        """Verify a deactivation receipt for this installation; return it. Stores nothing."""
        state = self._dir.load()
        seed = self._dir.machine_key()
        if state.product_id is None or seed is None:
            raise _fail(Code.WRONG_MACHINE, f"state directory {self.state_dir} has made no request")
        resp = messages.parse_response(response, pinned_keys(self._trusted(jwks, state), state.product_id))
        if resp.kind is not Kind.DEACTIVATION:
            raise _fail(
                Code.MALFORMED_RESPONSE, f"this is an {resp.kind.value} response, not a deactivation receipt"
            )
        self._check_binding(resp, state, seed, this_machine=False)
        return resp

    # -- the stored activation -------------------------------------------------------------------

    def check(self) -> Response:
        """The stored activation or trial if it is valid now; raises OfflineServiceError otherwise.

        Every check raises the clock high-water mark (both copies) to now, a failed one included.
        """
        state = self._dir.load()
        seed = self._dir.machine_key()
        witness = self._witness(state, seed)
        now = self._now()
        try:
            resp = self._stored(state, seed)
            self._verify(resp, state, witness, now)
        finally:
            self._touch(state, seed, witness, now)
        return resp

    def status(self) -> dict[str, Any]:
        """The stored activation, re-verified now, as JSON-ready data with ``valid`` and ``code``."""
        state = self._dir.load()
        seed = self._dir.machine_key()
        witness = self._witness(state, seed)
        now = self._now()
        resp: Response | None = None
        try:
            try:
                resp = self._stored(state, seed)
                self._verify(resp, state, witness, now)
            finally:
                state = self._touch(state, seed, witness, now)
        except OfflineServiceError as exc:
            if exc.code in _ENVIRONMENT_CODES:
                raise
            return status_doc(state, seed, resp, now, exc.code.value, exc.message)
        if resp.kind is Kind.TRIAL:
            message = f"trial valid until {_utc(resp.trial_ends_at or 0)}"
        else:
            message = "license valid" + (f" until {_utc(resp.expires_at)}" if resp.expires_at else "")
        return status_doc(state, seed, resp, now, "OK", message)

    def _stored(self, state: State, seed: bytes | None, *, this_machine: bool = True) -> Response:
        if state.response is None or state.product_id is None:
            raise _fail(Code.NOT_ACTIVATED, "this installation is not activated")
        keys = pinned_keys(self._trusted(None, state), state.product_id)
        resp = messages.parse_response(state.response.encode("ascii"), keys)
        if resp.kind is Kind.DEACTIVATION:
            raise _fail(Code.MALFORMED_RESPONSE, "the stored response is a deactivation receipt")
        if seed is None:
            raise _fail(Code.WRONG_MACHINE, f"the machine key {self._dir.key_file} is missing")
        self._check_binding(resp, state, seed, this_machine=this_machine)
        return resp

    def _verify(self, resp: Response, state: State, witness: Witness | None, now: int) -> None:
        if stale(state, witness):
            assert witness is not None
            raise _fail(
                Code.NOT_ACTIVATED,
                f"this activation was deactivated or replaced after the state directory {self.state_dir} was"
                f" copied, and the directory was restored from that copy (it counts {state.activations}"
                f" activations and {state.deactivations} deactivations, the witness in {self.witness_dir}"
                f" {witness.activations} and {witness.deactivations}); activate again",
            )
        # applyBefore is not checked: it limits when a response may be applied, not how long it lasts.
        mark = high_water_mark(state, witness)
        self._check_clock(resp, mark, now)
        # Never judged earlier than a time already seen: a clock set back within the tolerance does
        # not bring back a license or trial that a check has found expired.
        check_license(resp, max(now, mark))

    def _touch(self, state: State, seed: bytes | None, witness: Witness | None, now: int) -> State:
        """Raise the high-water mark in both copies to ``now``, and the witness's counts to the state's.

        Returns the state as stored. The state's own counts are never raised here: that would make
        a restored state directory agree with the witness.
        """
        if state.product_id is None:
            return state  # nothing stored yet; a check must not create the state directory
        mark = max(high_water_mark(state, witness), now)
        if seed is not None:
            activations, deactivations = counts(state, witness)
            new = Witness(last_seen=mark, activations=activations, deactivations=deactivations)
            if new != witness:
                self._witnesses.save(state.product_id, seed, new)
        if mark > state.last_seen:
            state = replace(state, last_seen=mark)
            self._dir.save(state)
        return state

    def _witness(self, state: State, seed: bytes | None) -> Witness | None:
        if state.product_id is None or seed is None:
            return None
        return self._witnesses.load(state.product_id, seed)

    # -- deactivation ----------------------------------------------------------------------------

    def deactivation_request(self) -> str:
        """A signed deactivation request for the stored activation. Changes nothing locally.

        Write it somewhere safe, then call ``forget_activation()``; ``deactivate()`` does both.
        """
        return self._deactivation()[0]

    def forget_activation(self, *, activation_id: str | None = None) -> None:
        """Drop the stored activation and every open request, so no earlier response can be re-applied.

        With ``activation_id``, refuse (CONFLICT) if the stored activation is another one.
        """
        state = self._dir.load()
        if state.response is None and not state.pending:
            return
        stored = peek(state.response).get("activationId") if state.response else None
        if activation_id is not None and stored != activation_id:
            raise _fail(Code.CONFLICT, f"the stored activation is {stored}, not {activation_id}")
        if state.response is not None:
            seed = self._dir.machine_key()
            witness = self._witness(state, seed)
            activations, deactivations = counts(state, witness)
            state = replace(
                state,
                last_seen=high_water_mark(state, witness),
                activations=activations,
                deactivations=deactivations + 1,
            )
            if seed is not None and state.product_id is not None:
                # The witness first: once it counts the deactivation, a copy of the state directory
                # made before it is refused, even if this process stops before the next write.
                self._witnesses.save(state.product_id, seed, witness_of(state))
        # The pinned JWKS stays: it is still needed to check the deactivation receipt.
        self._dir.save(replace(state, response=None, pending=()))

    def deactivate(self, out: str | os.PathLike[str]) -> str:
        """Write a deactivation request to ``out`` atomically, then forget the activation.

        In that order, so a crash never loses both the activation and the request.
        """
        token, activation_id = self._deactivation()
        write_atomic(out, (token + "\n").encode("ascii"), mode=0o644)
        self.forget_activation(activation_id=activation_id)
        return token

    def _deactivation(self) -> tuple[str, str]:
        state = self._dir.load()
        seed = self._dir.machine_key()
        if state.response is None:
            raise _fail(
                Code.NOT_ACTIVATED, "this installation is not activated; there is nothing to deactivate"
            )
        # The machine id may have changed (new hardware): the request must still name the
        # fingerprint the activation was made with, so it is not recomputed here.
        resp = self._stored(state, seed, this_machine=False)
        if resp.kind is Kind.TRIAL:
            raise _fail(Code.NOT_ACTIVATED, "this installation runs a trial; a trial cannot be deactivated")
        assert seed is not None  # _stored checked it
        token = self._sign(
            seed,
            Kind.DEACTIVATION,
            product_id=resp.product_id,
            fingerprint=resp.fingerprint,
            activation_id=resp.activation_id,
        )
        check_request(token)
        return token, resp.activation_id

    # -- checks ----------------------------------------------------------------------------------

    def _trusted(self, jwks: Mapping[str, Any] | None, state: State) -> Mapping[str, Any]:
        found = jwks if jwks is not None else self._jwks if self._jwks is not None else state.jwks
        if found is None:
            raise _fail(Code.INVALID_ARGUMENT, "no JWKS: pass the vendor's public keys (--jwks)")
        return found

    def _check_binding(self, resp: Response, state: State, seed: bytes, *, this_machine: bool) -> None:
        if resp.product_id != state.product_id:
            raise _fail(
                Code.WRONG_PRODUCT,
                f"the response is for product {resp.product_id}, this installation is {state.product_id}",
            )
        public_key, _ = nacl.bindings.crypto_sign_seed_keypair(seed)
        if resp.fingerprint != state.fingerprint or resp.machine_key_thumbprint != jws.jwk_thumbprint(
            public_key
        ):
            raise _fail(Code.WRONG_MACHINE, "the response was made for another machine or installation")
        if this_machine and not state.fingerprint_override:
            try:
                here = _machine.fingerprint(resp.product_id, self._machine_id())
            except OfflineServiceError as exc:
                raise _fail(Code.WRONG_MACHINE, exc.message) from None
            if here != state.fingerprint:
                raise _fail(Code.WRONG_MACHINE, "this state directory was made on another machine")

    def _check_clock(self, resp: Response, mark: int, now: int) -> None:
        if now < mark - self._offset or now < resp.issued_at - self._offset:
            seen = max(mark, resp.issued_at)
            raise _fail(
                Code.CLOCK_ROLLBACK,
                f"the system clock ({_utc(now)}) is behind a time already seen ({_utc(seen)}); correct the clock",
            )
