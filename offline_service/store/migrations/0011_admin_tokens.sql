-- Version 11: the admin API's tokens and idempotency keys. An admin token belongs to an account, not
-- to a person: a vendor's script (its store, CRM or support desk) holds it. Only the SHA-256 of the
-- secret is kept, so a copy of the database lets nobody in; `scopes` is the space-separated list
-- of what it may do, and every token expires (`expires_at` is required). `last_used_at` is written
-- at most every few minutes. A create sent with an `Idempotency-Key` header keeps its first answer
-- in admin_idempotency, written in the same transaction as what it created, so that a retry with
-- the same key (per account and token) answers the same and creates nothing; rows expire after a day.
-- The admin API pages an account's audit log newest first by id, hence audit_account_id.
CREATE TABLE admin_tokens (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    token_hash   BLOB NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX admin_tokens_account ON admin_tokens(account_id, created_at);
CREATE TABLE admin_idempotency (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    token_id        TEXT NOT NULL REFERENCES admin_tokens(id),
    idempotency_key TEXT NOT NULL,
    request_hash    BLOB NOT NULL,
    status          INTEGER NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, token_id, idempotency_key)
);
CREATE INDEX admin_idempotency_expiry ON admin_idempotency(expires_at);
CREATE INDEX audit_account_id ON audit_log(account_id, id);
