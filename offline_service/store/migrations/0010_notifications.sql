-- Version 10: notification mails. A person may also ask to hear of new releases they may download
-- (with the two preferences of version 5). Every notification mail is first a row of
-- mail_outbox, written in the transaction that records its event and sent after that commits
-- (`offline-service notify`, and the server every minute). `event_key` names the event and the
-- person, so that an event mails each person once however often it is looked for (a license's
-- expiry reminder: once per license, expiry date and person). A sender claims a few rows at a time
-- (`claim`, until `claimed_until`) so that two senders never send the same row; `sent_at` is set
-- once the relay has taken the mail. Rows are kept: they are the record of what was sent.
ALTER TABLE users ADD COLUMN notify_new_release INTEGER NOT NULL DEFAULT 0
    CHECK (notify_new_release IN (0, 1));
CREATE TABLE mail_outbox (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    event_key     TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    subject       TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claim         TEXT NOT NULL DEFAULT '',
    claimed_until INTEGER NOT NULL DEFAULT 0,
    sent_at       INTEGER
);
CREATE UNIQUE INDEX mail_outbox_event ON mail_outbox(account_id, event_key);
CREATE INDEX mail_outbox_unsent ON mail_outbox(created_at) WHERE sent_at IS NULL;
