"""Licensing's SQL, written once for every backend: products, licenses, activations, request
nonces and trials, with their row mappers.

This is the engine's hot path. Within one write transaction the mixin keeps identity maps of the
products and licenses it has read, and buffers its inserts (activations, nonces) and license
updates, writing them with executemany before commit or before any read that could see them. Reads
of buffered rows are answered from the buffers, so the engine sees exactly what it would see with
eager writes. Every statement is built once per dialect (``LicensingStatements``)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from offline_service.ids import normalize_license_key
from offline_service.licensing.models import (
    LICENSE_STATES,
    NEAR_EXPIRY_SECONDS,
    NEAR_LIMIT_PERCENT,
    UNLIMITED,
    Activation,
    ActivationFilter,
    License,
    LicenseFilter,
    LicenseStatus,
    LicenseSummary,
    ListedLicense,
    Product,
    Trial,
)
from offline_service.store.sql._base import (
    Lookup,
    RowsInsert,
    SizedStatement,
    SQLPart,
    groups,
    text_map_json,
    together,
)
from offline_service.store.sql.dialect import Dialect

__all__ = ["LICENSE_COLS", "LicensingSQL", "LicensingStatements", "key_hash", "license_from_row"]


@functools.lru_cache(maxsize=4096)  # a batch repeats the same few keys thousands of times
def key_hash(key: str) -> bytes:
    """Licenses are looked up by a hash of the normalised key, so lookups never compare key text
    directly and a key typed in lower case, without hyphens or with O for 0 still matches."""
    return hashlib.sha256(normalize_license_key(key).encode("utf-8")).digest()


LICENSE_COLS = (
    "id, account_id, product_id, key, allowed_activations, allowed_deactivations, status, created_at,"
    " expires_at, validity_days, owner, metadata, used_activations, used_deactivations, owner_user_id,"
    " owner_organization_id, max_version, name"
)
# An activation's columns with their SQL types (inserts of many rows bind one array per column).
_ACTIVATION_TYPES = [
    ("id", "text"),
    ("license_id", "text"),
    ("product_id", "text"),
    ("fingerprint", "text"),
    ("machine_key", "bytea"),
    ("machine_key_thumbprint", "text"),
    ("created_at", "bigint"),
    ("hostname", "text"),
    ("os", "text"),
    ("app_version", "text"),
    ("metadata", "text"),
    ("deactivated_at", "bigint"),
]
_ACTIVATION_COLS = ", ".join(name for name, _ in _ACTIVATION_TYPES)
_PRODUCT_COLS = (
    "id, account_id, name, trials_enabled, trial_days, max_response_validity, created_at, customer_release"
)
_TRIAL_COLS = (
    "id, product_id, fingerprint, machine_key_thumbprint, created_at, ends_at, hostname, os, app_version"
)
_USAGE = "UPDATE licenses SET used_activations = ?, used_deactivations = ?, expires_at = ? WHERE id = ?"


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


def _values(columns: str) -> str:
    return "(" + ", ".join("?" for _ in columns.split(",")) + ")"


def license_from_row(row: Sequence[Any]) -> License:
    """A license from the columns of ``LICENSE_COLS``, in order."""
    return License(
        id=row[0],
        account_id=row[1],
        product_id=row[2],
        key=row[3],
        allowed_activations=row[4],
        allowed_deactivations=row[5],
        status=LicenseStatus(row[6]),
        created_at=row[7],
        expires_at=row[8],
        validity_days=row[9],
        owner=row[10],
        metadata=json.loads(row[11]),
        used_activations=row[12],
        used_deactivations=row[13],
        owner_user_id=row[14],
        owner_organization_id=row[15],
        max_version=row[16],
        name=row[17],
    )


def _activation(row: Sequence[Any]) -> Activation:
    return Activation(
        id=row[0],
        license_id=row[1],
        product_id=row[2],
        fingerprint=row[3],
        machine_key=row[4],
        machine_key_thumbprint=row[5],
        created_at=row[6],
        hostname=row[7],
        os=row[8],
        app_version=row[9],
        metadata=json.loads(row[10]),
        deactivated_at=row[11],
    )


def _product(row: Sequence[Any]) -> Product:
    return Product(
        id=row[0],
        account_id=row[1],
        name=row[2],
        trials_enabled=bool(row[3]),
        trial_days=row[4],
        max_response_validity=row[5],
        created_at=row[6],
        customer_release=bool(row[7]),
    )


# The state filter of a list of activations: both, live only, deactivated only.
_LIVE_SQL = {None: "", True: " AND a.deactivated_at IS NULL", False: " AND a.deactivated_at IS NOT NULL"}
# Who holds a license, for a list: the owning organization's name, or the owning user's name, or
# their email; "" for a license of neither.
_HOLDER = "COALESCE(o.name, NULLIF(TRIM(u.first_name || ' ' || u.last_name), ''), u.email, '')"
# The line a list shows to tell a license apart (``ListedLicense.label``), for sorting by name.
_LABEL = f"LOWER(COALESCE(NULLIF(l.name, ''), NULLIF(l.owner, ''), {_HOLDER}))"
_USABLE = "l.status = 'active' AND (l.expires_at IS NULL OR l.expires_at > ?)"  # ? = now
# Each state a person sees (``LICENSE_STATES``) as a condition on ``l``; ? = now.
_STATE_SQL = {
    "active": f"({_USABLE})",
    "expired": "(l.status = 'active' AND l.expires_at <= ?)",
    "suspended": "l.status = 'suspended'",
    "revoked": "l.status = 'revoked'",
}
_NEAR_LIMIT = (
    f"(l.allowed_activations <> {UNLIMITED}"
    f" AND l.used_activations * 100 >= l.allowed_activations * {NEAR_LIMIT_PERCENT})"
)
_NEAR_EXPIRY = "(l.expires_at > ? AND l.expires_at <= ?)"  # ? = now, now + NEAR_EXPIRY_SECONDS
_ATTENTION_SQL = {
    "near-limit": _NEAR_LIMIT,
    "near-expiry": _NEAR_EXPIRY,
    # ? = now, now + NEAR_EXPIRY_SECONDS (a usable license's expiry is after now already)
    "any": f"(l.status = 'suspended' OR (({_USABLE}) AND ({_NEAR_LIMIT} OR l.expires_at <= ?)))",
}
# The sort keys of each order, before the ties (created, id). A key in parentheses keeps its own
# direction: licenses that never expire come last either way.
_LICENSE_ORDER = {
    "created": [],
    "product": ["LOWER(p.name)"],
    "name": [_LABEL],
    "expiry": ["(l.expires_at IS NULL)", "l.expires_at"],
    "seats": ["l.used_activations"],
}
_ACTIVATION_ORDER = {
    "newest": "a.created_at DESC, a.id DESC",
    # Machines without a hostname last; then by hostname, ignoring case; the newest first among equals.
    "hostname": "(a.hostname = ''), LOWER(a.hostname), a.created_at DESC, a.id DESC",
}
_TEXT_FIELDS = ("p.name", "l.name", "l.owner", "o.name", "(u.first_name || ' ' || u.last_name)", "u.email")


def _license_conditions(query: LicenseFilter, like: str) -> list[str]:
    """The conditions of ``query`` on ``l``, in the order ``_filter_args`` gives their values."""
    where = []
    if query.text:
        fields = [f"l.key {like} ? ESCAPE '\\'"] + [f"{f} {like} ? ESCAPE '\\'" for f in _TEXT_FIELDS]
        where.append("(" + " OR ".join(fields) + ")")
    if query.state is not None:
        where.append(_STATE_SQL[query.state])
    if query.product_id is not None:
        where.append("l.product_id = ?")
    if query.attention is not None:
        where.append(_ATTENTION_SQL[query.attention])
    return where


def _filter_args(query: LicenseFilter, now: int) -> list[object]:
    """The values of ``_license_conditions(query)``, in order."""
    args: list[object] = []
    if query.text:
        escaped = _escape_like(query.text)
        args += [f"%{escaped}"] + [f"%{escaped}%"] * len(_TEXT_FIELDS)  # the key: its end only
    if query.state in ("active", "expired"):
        args.append(now)
    if query.product_id is not None:
        args.append(query.product_id)
    if query.attention in ("near-expiry", "any"):
        args += [now, now + NEAR_EXPIRY_SECONDS]
    return args


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class LicensingStatements:
    """Licensing's statements in one dialect, built once (``Statements.for_dialect``)."""

    def __init__(self, d: Dialect) -> None:
        q = d.sql
        self.dialect = d
        self.product = q(f"SELECT {_PRODUCT_COLS} FROM products WHERE id = ? AND account_id = ?")
        self.product_by_id = q(f"SELECT {_PRODUCT_COLS} FROM products WHERE id = ?")
        self.products_by_ids = SizedStatement(
            d, f"SELECT {_PRODUCT_COLS} FROM products WHERE account_id = ? AND id IN {{in}}"
        )
        self.products = q(
            f"SELECT {_PRODUCT_COLS} FROM products WHERE account_id = ? ORDER BY created_at, id"
        )
        self.insert_product = q(f"INSERT INTO products ({_PRODUCT_COLS}) VALUES {_values(_PRODUCT_COLS)}")
        self.set_product_settings = q(
            "UPDATE products SET trials_enabled = ?, trial_days = ?, max_response_validity = ?,"
            " customer_release = ? WHERE id = ? AND account_id = ?"
        )
        self.license_by_key = q(f"SELECT {LICENSE_COLS} FROM licenses WHERE key_hash = ?")
        self.license_by_id = q(f"SELECT {LICENSE_COLS} FROM licenses WHERE id = ?")
        self.licenses_by_hashes = SizedStatement(
            d, f"SELECT {LICENSE_COLS} FROM licenses WHERE key_hash IN {{in}}"
        )
        licenses = f"SELECT {LICENSE_COLS} FROM licenses WHERE account_id = ?"
        self.licenses = q(licenses + " ORDER BY created_at, id")
        self.product_licenses = q(licenses + " AND product_id = ? ORDER BY created_at, id")
        self.organization_licenses = q(licenses + " AND owner_organization_id = ? ORDER BY created_at, id")
        self.insert_license = q(
            f"INSERT INTO licenses ({LICENSE_COLS}, key_hash) VALUES {_values(LICENSE_COLS + ', key_hash')}"
        )
        self.set_license_status = q("UPDATE licenses SET status = ? WHERE id = ?")
        self.set_license_name = q("UPDATE licenses SET name = ?, owner = ? WHERE id = ?")
        self.set_license_terms = q(
            "UPDATE licenses SET allowed_activations = ?, allowed_deactivations = ?, expires_at = ?,"
            " validity_days = ? WHERE id = ?"
        )
        # licenses_page, by which filters it has: (product, status, after)
        self.licenses_page = {
            (product, status, after): q(
                licenses
                + (" AND product_id = ?" if product else "")
                + (" AND status = ?" if status else "")
                + (" AND id > ?" if after else "")
                + " ORDER BY id LIMIT ?"
            )
            for product in (False, True)
            for status in (False, True)
            for after in (False, True)
        }
        # A person's licenses go in as one bound list: any number of them, one statement.
        mine = f"l.id {d.in_bound_list} AND l.account_id = ?"
        self.licenses_by_ids = q(
            f"SELECT {_prefixed('l', LICENSE_COLS)} FROM licenses l WHERE {mine} ORDER BY l.created_at, l.id"
        )
        self.license_summary = q(
            "SELECT "
            + ", ".join(
                f"COALESCE(SUM(CASE WHEN {_STATE_SQL[s]} THEN 1 ELSE 0 END), 0)" for s in LICENSE_STATES
            )
            + ", COALESCE(SUM(l.used_activations), 0),"
            f" COALESCE(SUM(CASE WHEN l.allowed_activations = {UNLIMITED} THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN l.allowed_activations > 0 THEN l.allowed_activations ELSE 0 END), 0),"
            f" COUNT(*) FROM licenses l WHERE {mine}"
        )
        self.license_products = q(
            f"SELECT DISTINCT {_prefixed('p', _PRODUCT_COLS)} FROM licenses l JOIN products p"
            f" ON p.id = l.product_id AND p.account_id = l.account_id WHERE {mine} ORDER BY p.name, p.id"
        )
        self._listed: dict[tuple[object, ...], tuple[str, str]] = {}
        self.update_usage = q(_USAGE)
        self.live_activation = q(
            f"SELECT {_ACTIVATION_COLS} FROM activations"
            " WHERE license_id = ? AND fingerprint = ? AND deactivated_at IS NULL"
        )
        # The live activation of a (license key hash, fingerprint) pair, if any: two index lookups.
        self.live_activations = Lookup(
            d,
            f"SELECT {_prefixed('a', _ACTIVATION_COLS)} FROM licenses l JOIN activations a"
            " ON a.license_id = l.id WHERE l.key_hash = {k0} AND a.fingerprint = {k1}"
            " AND a.deactivated_at IS NULL",
            ["bytea", "text"],
        )
        self.activation = q(f"SELECT {_ACTIVATION_COLS} FROM activations WHERE id = ? AND product_id = ?")
        self.activations = q(
            f"SELECT {_ACTIVATION_COLS} FROM activations WHERE license_id = ? ORDER BY created_at, id"
        )
        self.activation_in_account = q(
            f"SELECT {_prefixed('a', _ACTIVATION_COLS)} FROM activations a JOIN licenses l ON l.id = a.license_id"
            " WHERE a.id = ? AND l.account_id = ?"
        )
        # activations_page, by which filters it has: (license, live, after). One product's or one
        # license's at a time: the ``activations_product`` and ``activations_license`` indexes.
        self.activations_page = {
            (license, live, after): q(
                f"SELECT {_prefixed('a', _ACTIVATION_COLS)} FROM activations a JOIN licenses l"
                " ON l.id = a.license_id WHERE l.account_id = ?"
                + (" AND a.license_id = ?" if license else " AND a.product_id = ?")
                + _LIVE_SQL[live]
                + (" AND a.id > ?" if after else "")
                + " ORDER BY a.id LIMIT ?"
            )
            for license in (False, True)
            for live in (None, False, True)
            for after in (False, True)
        }
        self.insert_activations = RowsInsert(d, "activations", _ACTIVATION_TYPES)
        self.deactivate = q("UPDATE activations SET deactivated_at = ? WHERE id = ?")
        self.nonce_activation = q(
            "SELECT activation_id FROM request_nonces WHERE product_id = ? AND nonce = ?"
        )
        self.nonces = Lookup(
            d,
            "SELECT n.product_id, n.nonce, n.activation_id FROM request_nonces n"
            " WHERE n.product_id = {k0} AND n.nonce = {k1}",
            ["text", "text"],
        )
        self.insert_nonces = RowsInsert(
            d,
            "request_nonces",
            [
                ("product_id", "text"),
                ("nonce", "text"),
                ("kind", "text"),
                ("activation_id", "text"),
                ("processed_at", "bigint"),
            ],
        )
        self.trial = q(f"SELECT {_TRIAL_COLS} FROM trials WHERE product_id = ? AND fingerprint = ?")
        self.insert_trial = q(f"INSERT INTO trials ({_TRIAL_COLS}) VALUES {_values(_TRIAL_COLS)}")
        self._found: dict[tuple[bool, bool, bool | None, bool, str], tuple[str, str]] = {}

    def find_activations(
        self, *, product: bool, license: bool, live: bool | None, text: bool, order: str = "newest"
    ) -> tuple[str, str]:
        """The count and page statements of ``find_activations`` for the filters given: built on
        first use of each of the few combinations, then reused."""
        shape = (product, license, live, text, order)
        found = self._found.get(shape)
        if found is None:
            where = [f"a.license_id {self.dialect.in_bound_list}", "l.account_id = ?"]
            if product:
                where.append("a.product_id = ?")
            if license:
                where.append("a.license_id = ?")
            if live is not None:
                where.append("a.deactivated_at IS NULL" if live else "a.deactivated_at IS NOT NULL")
            if text:
                like = self.dialect.like
                where.append(f"(a.hostname {like} ? ESCAPE '\\' OR a.fingerprint {like} ? ESCAPE '\\')")
            sql = "FROM activations a JOIN licenses l ON l.id = a.license_id WHERE " + " AND ".join(where)
            found = self._found[shape] = (
                self.dialect.sql(f"SELECT COUNT(*) {sql}"),
                self.dialect.sql(
                    f"SELECT {_prefixed('a', _ACTIVATION_COLS)} {sql}"
                    f" ORDER BY {_ACTIVATION_ORDER.get(order, _ACTIVATION_ORDER['newest'])} LIMIT ? OFFSET ?"
                ),
            )
        return found

    def find_licenses(self, query: LicenseFilter) -> tuple[str, str]:
        """The count and page statements of ``find_licenses`` for the query's shape (which filters,
        which order), built on first use of each shape, then reused. Their parameters, in order:
        the count's, ``_filter_args`` then ``mine``'s (license ids, account); the page's, ``mine``'s
        then ``_filter_args``, then limit and offset."""
        shape = (
            bool(query.text),
            query.state,
            query.product_id is not None,
            query.attention,
            query.sort,
            query.descending,
        )
        found = self._listed.get(shape)
        if found is None:
            where = _license_conditions(query, self.dialect.like)
            matches = " AND ".join(where) if where else "1 = 1"
            base = (
                "FROM licenses l JOIN products p ON p.id = l.product_id AND p.account_id = l.account_id"
                " LEFT JOIN organizations o ON o.id = l.owner_organization_id AND o.account_id = l.account_id"
                " LEFT JOIN users u ON u.id = l.owner_user_id AND u.account_id = l.account_id"
                f" WHERE l.id {self.dialect.in_bound_list} AND l.account_id = ?"
            )
            direction = " DESC" if query.descending else ""
            keys = [*_LICENSE_ORDER.get(query.sort, _LICENSE_ORDER["created"]), "l.created_at", "l.id"]
            order = ", ".join(k if k.startswith("(") else k + direction for k in keys)
            found = self._listed[shape] = (
                self.dialect.sql(
                    f"SELECT COALESCE(SUM(CASE WHEN {matches} THEN 1 ELSE 0 END), 0), COUNT(*) {base}"
                ),
                self.dialect.sql(
                    f"SELECT {_prefixed('l', LICENSE_COLS)}, p.name, {_HOLDER} {base} AND {matches}"
                    f" ORDER BY {order} LIMIT ? OFFSET ?"
                ),
            )
        return found


class LicensingSQL(SQLPart):
    """Licensing's part of a transaction (see the module's docstring for the buffering)."""

    __slots__ = ()
    _lq: LicensingStatements
    _products: dict[tuple[str, str], Product | None]
    _licenses: dict[bytes | str, License]  # by key hash and by id
    _dirty: set[str]
    _activations: dict[str, Activation]  # buffered inserts by id
    _live: dict[tuple[str, str], Activation]  # buffered inserts by (license, fingerprint)
    _nonces: dict[tuple[str, str], tuple[str, str, str, str, int]]
    # Results of preload(): nonces and live activations known to exist, or known not to.
    _known_nonces: dict[tuple[str, str], str | None]
    _known_pairs: set[tuple[str, str]]
    _known_live: dict[tuple[str, str], Activation]

    if TYPE_CHECKING:

        def flush(self) -> None: ...

    def _flush_licensing(self) -> None:
        c, q = self._c, self._lq
        if self._activations:
            q.insert_activations.run(
                c,
                [
                    (
                        a.id,
                        a.license_id,
                        a.product_id,
                        a.fingerprint,
                        a.machine_key,
                        a.machine_key_thumbprint,
                        a.created_at,
                        a.hostname,
                        a.os,
                        a.app_version,
                        text_map_json(a.metadata),
                        a.deactivated_at,
                    )
                    for a in self._activations.values()
                ],
            )
            self._activations.clear()
            self._live.clear()
        if self._nonces:
            q.insert_nonces.run(c, list(self._nonces.values()))
            self._nonces.clear()
        if self._dirty:
            rows = [self._licenses[i] for i in self._dirty]
            c.executemany(
                q.update_usage, [(x.used_activations, x.used_deactivations, x.expires_at, x.id) for x in rows]
            )
            self._dirty.clear()

    def preload(
        self, requests: Sequence[tuple[str, str, str, str | None]], *, account_id: str | None = None
    ) -> None:
        q, size = self._lq, self._lq.dialect.max_list
        # (account id, product id) of the requests' products not yet known, when asked for.
        wanted = (
            sorted({(account_id, p) for p, _, _, _ in requests} - self._products.keys())
            if account_id is not None
            else []
        )
        pairs: set[tuple[bytes, str]] = set()  # (license key hash, fingerprint) not yet known
        for _, _, fingerprint, key in requests:
            if key is None:
                continue
            known = self._licenses.get(hashed := key_hash(key))
            if known is None or (known.id, fingerprint) not in self._known_pairs:
                pairs.add((hashed, fingerprint))
        hashes = {hashed for hashed, _ in pairs}
        nonce_keys = [(product_id, nonce) for product_id, nonce, _, _ in requests]
        # The products, licenses, their live activations and the nonces: one round trip for all.
        with together(self._c):
            products = [
                self._c.execute(q.products_by_ids(len(group)), [account_id, *(p for _, p in group)])
                for group in groups(wanted, size - 1)
            ]
            licenses = [
                self._c.execute(q.licenses_by_hashes(len(group)), group)
                for group in groups(sorted(hashes - self._licenses.keys()), size)
            ]
            live = [self._c.execute(sql, args) for sql, args in q.live_activations.statements(sorted(pairs))]
            nonces = [self._c.execute(sql, args) for sql, args in q.nonces.statements(nonce_keys)]
        for product_key in wanted:
            self._products[product_key] = None  # unless found below
        for cursor in products:
            for row in cursor:
                self._products[(row[1], row[0])] = _product(row)
        for cursor in licenses:
            for row in cursor:
                self._remember(row)
        for cursor in live:
            for row in cursor:
                a = _activation(row)
                self._known_live[(a.license_id, a.fingerprint)] = a
        for hashed, fingerprint in pairs:
            found = self._licenses.get(hashed)
            if found is not None:
                self._known_pairs.add((found.id, fingerprint))
        for pair in nonce_keys:
            self._known_nonces.setdefault(pair, None)
        for cursor in nonces:
            for product_id, nonce, activation_id in cursor:
                self._known_nonces[(product_id, nonce)] = activation_id

    def _forget_preloaded(self) -> None:
        self._known_nonces.clear()
        self._known_pairs.clear()
        self._known_live.clear()

    def product(self, account_id: str, product_id: str) -> Product | None:
        cache_key = (account_id, product_id)
        if cache_key in self._products:
            return self._products[cache_key]
        row = self._one(self._lq.product, (product_id, account_id))
        found = self._products[cache_key] = _product(row) if row else None
        return found

    def product_by_id(self, product_id: str) -> Product | None:
        row = self._one(self._lq.product_by_id, (product_id,))
        return _product(row) if row else None

    def products(self, account_id: str) -> Sequence[Product]:
        return [_product(r) for r in self._c.execute(self._lq.products, (account_id,))]

    def insert_product(self, product: Product) -> None:
        self._products.pop((product.account_id, product.id), None)
        self._c.execute(
            self._lq.insert_product,
            (
                product.id,
                product.account_id,
                product.name,
                int(product.trials_enabled),
                product.trial_days,
                product.max_response_validity,
                product.created_at,
                int(product.customer_release),
            ),
        )

    def set_product_settings(self, product: Product) -> None:
        self._products.pop((product.account_id, product.id), None)
        self._c.execute(
            self._lq.set_product_settings,
            (
                int(product.trials_enabled),
                product.trial_days,
                product.max_response_validity,
                int(product.customer_release),
                product.id,
                product.account_id,
            ),
        )

    def _remember(self, row: Sequence[Any] | None) -> License | None:
        if row is None:
            return None
        found = self._licenses.get(row[0])
        if found is None:
            found = license_from_row(row)
            self._licenses[found.id] = found
            self._licenses[key_hash(found.key)] = found
        return found

    def license_by_key(self, account_id: str, key: str) -> License | None:
        digest = key_hash(key)
        found = self._licenses.get(digest)
        if found is None:
            found = self._remember(self._one(self._lq.license_by_key, (digest,)))
        return found if found is not None and found.account_id == account_id else None

    def license_by_id(self, account_id: str, license_id: str) -> License | None:
        found = self._licenses.get(license_id)
        if found is None:
            found = self._remember(self._one(self._lq.license_by_id, (license_id,)))
        return found if found is not None and found.account_id == account_id else None

    def licenses(self, account_id: str, product_id: str | None = None) -> Sequence[License]:
        self.flush()
        if product_id is None:
            rows = self._c.execute(self._lq.licenses, (account_id,))
        else:
            rows = self._c.execute(self._lq.product_licenses, (account_id, product_id))
        return [license_from_row(r) for r in rows]

    def organization_licenses(self, account_id: str, organization_id: str) -> Sequence[License]:
        self.flush()
        rows = self._c.execute(self._lq.organization_licenses, (account_id, organization_id))
        return [license_from_row(r) for r in rows]

    def _mine(self, account_id: str, license_ids: frozenset[str]) -> list[object]:
        return [self._lq.dialect.bound_list(sorted(license_ids)), account_id]

    def licenses_by_ids(self, account_id: str, license_ids: frozenset[str]) -> Sequence[License]:
        self.flush()
        rows = self._c.execute(self._lq.licenses_by_ids, self._mine(account_id, license_ids))
        return [license_from_row(r) for r in rows]

    def find_licenses(
        self,
        account_id: str,
        license_ids: frozenset[str],
        query: LicenseFilter,
        *,
        now: int,
        limit: int,
        offset: int = 0,
    ) -> tuple[int, int, Sequence[ListedLicense]]:
        self.flush()
        count, page = self._lq.find_licenses(query)
        mine, matching = self._mine(account_id, license_ids), _filter_args(query, now)
        counted = self._one(count, [*matching, *mine])
        found, total = (int(counted[0]), int(counted[1])) if counted else (0, 0)
        rows: Iterable[Sequence[Any]] = (
            self._c.execute(page, [*mine, *matching, limit, offset]) if found > offset else []
        )
        width = len(LICENSE_COLS.split(","))
        return (
            found,
            total,
            [ListedLicense(license_from_row(r), product=r[width], holder=r[width + 1]) for r in rows],
        )

    def license_summary(self, account_id: str, license_ids: frozenset[str], *, now: int) -> LicenseSummary:
        self.flush()
        row = self._one(self._lq.license_summary, [now, now, *self._mine(account_id, license_ids)])
        counts = [int(x) for x in row] if row else [0] * (len(LICENSE_STATES) + 4)
        n = len(LICENSE_STATES)
        states = dict(zip(LICENSE_STATES, counts[:n], strict=True))
        used, unlimited, allowed, total = counts[n:]
        return LicenseSummary(
            total=total, states=states, used=used, allowed=UNLIMITED if unlimited else allowed
        )

    def license_products(self, account_id: str, license_ids: frozenset[str]) -> Sequence[Product]:
        self.flush()
        rows = self._c.execute(self._lq.license_products, self._mine(account_id, license_ids))
        return [_product(r) for r in rows]

    def insert_license(self, license: License) -> None:
        self._c.execute(
            self._lq.insert_license,
            (
                license.id,
                license.account_id,
                license.product_id,
                license.key,
                license.allowed_activations,
                license.allowed_deactivations,
                license.status.value,
                license.created_at,
                license.expires_at,
                license.validity_days,
                license.owner,
                json.dumps(dict(license.metadata)),
                license.used_activations,
                license.used_deactivations,
                license.owner_user_id,
                license.owner_organization_id,
                license.max_version,
                license.name,
                key_hash(license.key),
            ),
        )

    def set_license_status(self, license_id: str, status: LicenseStatus) -> None:
        self.flush()
        self._forget_license(license_id)
        self._c.execute(self._lq.set_license_status, (status.value, license_id))

    def set_license_name(self, license_id: str, *, name: str | None, owner: str | None) -> None:
        self.flush()
        self._forget_license(license_id)
        self._c.execute(self._lq.set_license_name, (name, owner, license_id))

    def set_license_terms(
        self,
        license_id: str,
        *,
        allowed_activations: int,
        allowed_deactivations: int,
        expires_at: int | None,
        validity_days: int | None,
    ) -> None:
        self.flush()
        self._forget_license(license_id)
        args = (allowed_activations, allowed_deactivations, expires_at, validity_days, license_id)
        self._c.execute(self._lq.set_license_terms, args)

    def licenses_page(
        self,
        account_id: str,
        *,
        product_id: str | None = None,
        status: LicenseStatus | None = None,
        after: str | None = None,
        limit: int,
    ) -> Sequence[License]:
        self.flush()
        sql = self._lq.licenses_page[(product_id is not None, status is not None, after is not None)]
        args: list[object] = [account_id]
        args += [x for x in (product_id, status.value if status else None, after) if x is not None]
        return [license_from_row(r) for r in self._c.execute(sql, [*args, limit])]

    def _forget_license(self, license_id: str) -> None:
        found = self._licenses.pop(license_id, None)
        if found is not None:
            self._licenses.pop(key_hash(found.key), None)

    def update_license_usage(
        self, license_id: str, *, used_activations: int, used_deactivations: int, expires_at: int | None
    ) -> None:
        current = self._licenses.get(license_id)
        if current is None:  # not read in this transaction: write through
            self._c.execute(
                self._lq.update_usage, (used_activations, used_deactivations, expires_at, license_id)
            )
            return
        updated = current.with_usage(
            used_activations=used_activations, used_deactivations=used_deactivations, expires_at=expires_at
        )
        self._licenses[license_id] = self._licenses[key_hash(current.key)] = updated
        self._dirty.add(license_id)

    def live_activation(self, license_id: str, fingerprint: str) -> Activation | None:
        buffered = self._live.get((license_id, fingerprint))
        if buffered is not None:
            return buffered
        if (license_id, fingerprint) in self._known_pairs:
            return self._known_live.get((license_id, fingerprint))
        row = self._one(self._lq.live_activation, (license_id, fingerprint))
        return _activation(row) if row else None

    def activation(self, product_id: str, activation_id: str) -> Activation | None:
        buffered = self._activations.get(activation_id)
        if buffered is not None:
            return buffered if buffered.product_id == product_id else None
        row = self._one(self._lq.activation, (activation_id, product_id))
        return _activation(row) if row else None

    def activations(self, license_id: str) -> Sequence[Activation]:
        self.flush()
        return [_activation(r) for r in self._c.execute(self._lq.activations, (license_id,))]

    def activation_in_account(self, account_id: str, activation_id: str) -> Activation | None:
        self.flush()
        row = self._one(self._lq.activation_in_account, (activation_id, account_id))
        return _activation(row) if row else None

    def activations_page(
        self,
        account_id: str,
        *,
        product_id: str | None = None,
        license_id: str | None = None,
        live: bool | None = None,
        after: str | None = None,
        limit: int,
    ) -> Sequence[Activation]:
        self.flush()
        # Activations carry no account: a page is read per license, or per product (each a range
        # of an index in id order, checked against the account through its license), and the
        # account's products' pages merged. What a page reads grows with the page and the number of
        # products, never with other accounts' activations or this account's older pages.
        if license_id is not None:
            scopes = [(True, license_id)]
        elif product_id is not None:
            scopes = [(False, product_id)]
        else:
            scopes = [(False, r[0]) for r in self._c.execute(self._lq.products, (account_id,))]
        found: list[Activation] = []
        for by_license, scope in scopes:
            sql = self._lq.activations_page[(by_license, live, after is not None)]
            args: list[object] = [account_id, scope, *([after] if after is not None else []), limit]
            found += [_activation(r) for r in self._c.execute(sql, args)]
        if product_id is not None:  # with a license too: none unless the license is the product's
            found = [a for a in found if a.product_id == product_id]
        return sorted(found, key=lambda a: a.id)[:limit]

    def insert_activation(self, a: Activation) -> None:
        self._activations[a.id] = a
        if a.deactivated_at is None:
            self._live[(a.license_id, a.fingerprint)] = a

    def deactivate(self, activation_id: str, at: int) -> None:
        self.flush()
        self._forget_preloaded()
        self._c.execute(self._lq.deactivate, (at, activation_id))

    def nonce_activation(self, product_id: str, nonce: str) -> str | None:
        buffered = self._nonces.get((product_id, nonce))
        if buffered is not None:
            return buffered[3]
        if (product_id, nonce) in self._known_nonces:
            return self._known_nonces[(product_id, nonce)]
        row = self._one(self._lq.nonce_activation, (product_id, nonce))
        return row[0] if row else None

    def record_nonce(self, product_id: str, nonce: str, kind: str, activation_id: str, at: int) -> None:
        self._nonces[(product_id, nonce)] = (product_id, nonce, kind, activation_id, at)

    def find_activations(
        self,
        account_id: str,
        license_ids: frozenset[str],
        query: ActivationFilter,
        *,
        limit: int,
        offset: int = 0,
    ) -> tuple[int, Sequence[Activation]]:
        self.flush()
        q = self._lq
        # The licenses go in as one bound list: any number of them, one statement, one page.
        args: list[object] = [q.dialect.bound_list(sorted(license_ids)), account_id]
        if query.product_id is not None:
            args.append(query.product_id)
        if query.license_id is not None:
            args.append(query.license_id)
        if query.text:
            escaped = _escape_like(query.text)
            pattern = f"%{escaped}%"
            args += [pattern, pattern]
        count, page = q.find_activations(
            product=query.product_id is not None,
            license=query.license_id is not None,
            live=query.live,
            text=bool(query.text),
            order=query.order,
        )
        total = self._one(count, args)
        rows = self._c.execute(page, (*args, limit, offset))
        return (int(total[0]) if total else 0), [_activation(r) for r in rows]

    def trial(self, product_id: str, fingerprint: str) -> Trial | None:
        row = self._one(self._lq.trial, (product_id, fingerprint))
        return Trial(*row) if row else None

    def insert_trial(self, t: Trial) -> None:
        self._c.execute(
            self._lq.insert_trial,
            (
                t.id,
                t.product_id,
                t.fingerprint,
                t.machine_key_thumbprint,
                t.created_at,
                t.ends_at,
                t.hostname,
                t.os,
                t.app_version,
            ),
        )
