-- Version 7: the results of portal batches (post/redirect/get): what became of each file, as JSON
-- (`files`), and the zip of responses (`archive`), kept for the person who uploaded them until
-- `expires_at`, so that any instance can show the result page and serve the download. Expired
-- rows are never shown and are deleted a few at a time when a new result is stored.
CREATE TABLE batch_results (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    files       TEXT NOT NULL,
    archive     BLOB NOT NULL
);
CREATE INDEX batch_results_expires ON batch_results(expires_at);
