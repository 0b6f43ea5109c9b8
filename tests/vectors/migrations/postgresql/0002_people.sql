-- PostgreSQL's spelling of ../0002_people.sql: BIGINT for epoch seconds and counters, BYTEA for BLOB,
-- no WITHOUT ROWID.
-- Version 2: people and access for the customer portal and the JSON API.
CREATE TABLE organizations (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    name           TEXT NOT NULL,
    allowed_users  BIGINT CHECK (allowed_users IS NULL OR allowed_users >= 0),
    created_at     BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    email            TEXT NOT NULL,
    email_key        TEXT NOT NULL,
    password_hash    TEXT,
    role             TEXT NOT NULL CHECK (role IN ('organization-admin', 'user')),
    organization_id  TEXT REFERENCES organizations(id),
    first_name       TEXT NOT NULL DEFAULT '',
    last_name        TEXT NOT NULL DEFAULT '',
    disabled         BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at       BIGINT NOT NULL,
    UNIQUE (account_id, email_key),
    CHECK (role = 'user' OR organization_id IS NOT NULL)
);
CREATE INDEX users_organization ON users(organization_id);

CREATE TABLE user_groups (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    organization_id  TEXT NOT NULL REFERENCES organizations(id),
    name             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES user_groups(id),
    user_id   TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE group_licenses (
    group_id    TEXT NOT NULL REFERENCES user_groups(id),
    license_id  TEXT NOT NULL REFERENCES licenses(id),
    PRIMARY KEY (group_id, license_id)
);
CREATE INDEX group_licenses_license ON group_licenses(license_id);

ALTER TABLE licenses ADD COLUMN owner_user_id TEXT REFERENCES users(id);
ALTER TABLE licenses ADD COLUMN owner_organization_id TEXT REFERENCES organizations(id);
CREATE INDEX licenses_owner_user ON licenses(owner_user_id);
CREATE INDEX licenses_owner_organization ON licenses(owner_organization_id);

-- Browser sessions and API tokens: only a SHA-256 of each secret is stored.
CREATE TABLE credentials (
    token_hash  BYTEA PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('session', 'access')),
    user_id     TEXT NOT NULL REFERENCES users(id),
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    user_agent  TEXT NOT NULL DEFAULT '',
    address     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX credentials_user ON credentials(user_id, kind);

-- Failed logins, for growing back-off per account+email and per client address.
CREATE TABLE login_failures (
    subject       TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
