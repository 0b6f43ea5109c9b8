-- PostgreSQL's spelling of ../0004_releases_branding.sql: BIGINT for epoch seconds and counters, BYTEA for BLOB,
-- no WITHOUT ROWID.
-- Version 4: releases for the portal's Downloads page, a license's maximum version, and each
-- account's portal customization (name, accent colour, logo, custom domain).
CREATE TABLE releases (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    product_id    TEXT NOT NULL REFERENCES products(id),
    version       TEXT NOT NULL,
    channel       TEXT NOT NULL,
    notes         TEXT NOT NULL DEFAULT '',
    published_at  BIGINT NOT NULL,
    UNIQUE (product_id, version, channel)
);
CREATE INDEX releases_account_product ON releases(account_id, product_id);

-- The files of a release; `path` is relative to the releases directory and never comes from a request.
CREATE TABLE release_files (
    id          TEXT PRIMARY KEY,
    release_id  TEXT NOT NULL REFERENCES releases(id),
    name        TEXT NOT NULL,
    size        BIGINT NOT NULL CHECK (size >= 0),
    sha256      TEXT NOT NULL CHECK (length(sha256) = 64),
    path        TEXT NOT NULL,
    UNIQUE (release_id, name)
);

ALTER TABLE licenses ADD COLUMN max_version TEXT;

CREATE TABLE account_branding (
    account_id     TEXT PRIMARY KEY REFERENCES accounts(id),
    portal_name    TEXT,
    accent_color   TEXT CHECK (accent_color IS NULL OR length(accent_color) = 7),
    logo_file      TEXT,
    logo_type      TEXT,
    custom_domain  TEXT UNIQUE,
    updated_at     BIGINT NOT NULL
);
