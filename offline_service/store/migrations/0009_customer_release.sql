-- Version 9: a per-product setting of the vendor's, off by default: whether an organization admin
-- may release, in the portal, the seat of a lost machine of one of the organization's licenses
-- (counted as one of the license's deactivations). The vendor sets it with
-- `offline-service product update ID --customer-release on|off`.
ALTER TABLE products ADD COLUMN customer_release INTEGER NOT NULL DEFAULT 0
    CHECK (customer_release IN (0, 1));
