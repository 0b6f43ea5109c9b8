-- PostgreSQL's 0006, as written (not mapped): version 6 came with the PostgreSQL backend and ran
-- on it verbatim, so day_count is PostgreSQL's 32-bit INTEGER in every database made since, where
-- the mapping would say BIGINT. Kept so that old and new databases have one schema; a migration
-- widening the column on PostgreSQL would let this file go.
-- Version 6: the trial endpoint's limits per client address, shared by every server process and
-- instance (they lived in each process's memory, so N processes allowed N times the amount).
-- tokens/updated_at: the token bucket (requests a minute); day_start/day_count: new trials in the
-- day that began at the first one. Rows untouched for a day are pruned (they equal no row).
CREATE TABLE trial_limits (
    address_key  TEXT PRIMARY KEY,
    tokens       DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    day_start    DOUBLE PRECISION NOT NULL,
    day_count    INTEGER NOT NULL
);
CREATE INDEX trial_limits_updated ON trial_limits(updated_at);
