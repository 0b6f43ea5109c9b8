-- PostgreSQL's spelling of ../0005_people_admin.sql: BIGINT for epoch seconds and counters, BYTEA for BLOB,
-- no WITHOUT ROWID.
-- Version 5: organization admins manage people; profiles, personal access tokens, set-password links.

-- Credentials gain personal access tokens ('personal'), a public id (so a session or token can be
-- listed and revoked without showing its secret or its hash), a name and the time of last use.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt and its rows copied.
CREATE TABLE credentials_v4 (
    token_hash    BYTEA PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('session', 'access', 'personal')),
    user_id       TEXT NOT NULL REFERENCES users(id),
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    user_agent    TEXT NOT NULL DEFAULT '',
    address       TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL DEFAULT '',
    last_used_at  BIGINT
);
INSERT INTO credentials_v4 (token_hash, id, kind, user_id, account_id, created_at, expires_at, revoked_at,
                            user_agent, address)
    -- a fresh public id per row, as hex(randomblob(16)) makes on SQLite
    SELECT token_hash, 'crd_' || replace(gen_random_uuid()::text, '-', ''), kind, user_id, account_id, created_at,
           expires_at, revoked_at, user_agent, address
    FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_v4 RENAME TO credentials;
CREATE INDEX credentials_user ON credentials(user_id, kind);

-- One-time links to set a password (a new user's first, or a reset sent by an admin): only the
-- SHA-256 of the secret is stored; a row is deleted when it is used or replaced.
CREATE TABLE password_tokens (
    token_hash  BYTEA PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX password_tokens_user ON password_tokens(user_id);

-- A person's preferences: the time zone pages show times in, and which mails they want.
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE users ADD COLUMN notify_new_activation BIGINT NOT NULL DEFAULT 0
    CHECK (notify_new_activation IN (0, 1));
ALTER TABLE users ADD COLUMN notify_license_expiry BIGINT NOT NULL DEFAULT 0
    CHECK (notify_license_expiry IN (0, 1));

