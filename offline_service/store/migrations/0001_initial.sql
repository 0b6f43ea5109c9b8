-- Version 1 of the schema: accounts, products, licenses, activations, trials, nonces, audit log.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    alias       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE products (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES accounts(id),
    name                   TEXT NOT NULL,
    trials_enabled         INTEGER NOT NULL CHECK (trials_enabled IN (0, 1)),
    trial_days             INTEGER NOT NULL CHECK (trial_days >= 0),
    max_response_validity  INTEGER NOT NULL CHECK (max_response_validity > 0),
    created_at             INTEGER NOT NULL
);
CREATE INDEX products_account ON products(account_id);

CREATE TABLE licenses (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES accounts(id),
    product_id             TEXT NOT NULL REFERENCES products(id),
    key                    TEXT NOT NULL,
    key_hash               BLOB NOT NULL UNIQUE,
    owner                  TEXT,
    allowed_activations    INTEGER NOT NULL CHECK (allowed_activations >= -1),
    allowed_deactivations  INTEGER NOT NULL CHECK (allowed_deactivations >= -1),
    expires_at             INTEGER,
    validity_days          INTEGER CHECK (validity_days IS NULL OR validity_days > 0),
    status                 TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    metadata               TEXT NOT NULL DEFAULT '{}',
    used_activations       INTEGER NOT NULL DEFAULT 0 CHECK (used_activations >= 0),
    used_deactivations     INTEGER NOT NULL DEFAULT 0 CHECK (used_deactivations >= 0),
    created_at             INTEGER NOT NULL
);
CREATE INDEX licenses_account ON licenses(account_id, product_id);

CREATE TABLE activations (
    id                      TEXT PRIMARY KEY,
    license_id              TEXT NOT NULL REFERENCES licenses(id),
    product_id              TEXT NOT NULL REFERENCES products(id),
    fingerprint             TEXT NOT NULL,
    machine_key             BLOB NOT NULL,
    machine_key_thumbprint  TEXT NOT NULL,
    hostname                TEXT NOT NULL,
    os                      TEXT NOT NULL,
    app_version             TEXT NOT NULL,
    metadata                TEXT NOT NULL DEFAULT '{}',
    created_at              INTEGER NOT NULL,
    deactivated_at          INTEGER
);
-- At most one live activation per machine and license: the database enforces it too.
CREATE UNIQUE INDEX activations_live ON activations(license_id, fingerprint) WHERE deactivated_at IS NULL;
CREATE INDEX activations_license ON activations(license_id, created_at);

-- Every accepted activation or deactivation request, so the same file is never counted twice and
-- an activation request cannot be replayed after its machine was deactivated.
CREATE TABLE request_nonces (
    product_id     TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    activation_id  TEXT NOT NULL,
    processed_at   INTEGER NOT NULL,
    PRIMARY KEY (product_id, nonce)
) WITHOUT ROWID;

CREATE TABLE trials (
    id                      TEXT PRIMARY KEY,
    product_id              TEXT NOT NULL REFERENCES products(id),
    fingerprint             TEXT NOT NULL,
    machine_key_thumbprint  TEXT NOT NULL,
    hostname                TEXT NOT NULL,
    os                      TEXT NOT NULL,
    app_version             TEXT NOT NULL,
    created_at              INTEGER NOT NULL,
    ends_at                 INTEGER NOT NULL,
    UNIQUE (product_id, fingerprint)
);

CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    account_id     TEXT,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    code           TEXT NOT NULL,
    product_id     TEXT,
    license_id     TEXT,
    activation_id  TEXT,
    detail         TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_account_at ON audit_log(account_id, at);
