-- Version 12: webhooks. An account registers endpoints (a URL, the event types it wants, the
-- shared secret deliveries are signed with, Standard Webhooks' `whsec_...`: kept as is, since
-- the sender needs it to sign; see docs/WEBHOOKS.md). Every event is first one row of
-- webhook_deliveries per endpoint that wants it, written in the transaction that records the
-- event, and sent after that commits (`offline-service webhook send`, and the server). A sender
-- claims rows (`claim`, until `claimed_until`) so that two senders never send the same row at
-- once; a failed attempt sets `next_attempt_at` by exponential back-off. `failing_since` is the
-- first failure of an endpoint's current run of failures: failing long enough disables it.
-- The delivery's id is the `webhook-id` header, the same on every attempt of it.
CREATE TABLE webhook_endpoints (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    url           TEXT NOT NULL,
    events        TEXT NOT NULL,
    secret        TEXT NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    failing_since INTEGER,
    disabled_at   INTEGER
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints(account_id, id);
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id),
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    claim           TEXT NOT NULL DEFAULT '',
    claimed_until   INTEGER NOT NULL DEFAULT 0,
    delivered_at    INTEGER,
    given_up_at     INTEGER,
    last_status     INTEGER,
    last_latency_ms INTEGER,
    last_error      TEXT NOT NULL DEFAULT '',
    last_attempt_at INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at);
