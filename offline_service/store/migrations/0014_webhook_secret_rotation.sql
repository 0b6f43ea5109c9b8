-- Version 14: webhook secrets sealed at rest, and rotated with a grace. `secret` now holds the
-- secret sealed with the keys directory's sealing key (`sealed:v1:...`, offline_service/webhooks/
-- sealing.py); rows written before keep their `whsec_...` and work as they are until their next
-- rotation. A rotation keeps the replaced secret, sealed too, in `previous_secret` until
-- `previous_until`: deliveries meanwhile carry a signature by each, so a receiver can change its
-- copy of the secret without rejecting any (Standard Webhooks' several signatures).
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_endpoints ADD COLUMN previous_until INTEGER;
