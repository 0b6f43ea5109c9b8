-- Version 8: a license's name, set by the vendor (`license create|update --name`), so that a
-- customer with many licenses of one product and one owner can tell them apart and find them.
-- NULL: no name; the portal then shows the owner note or the owning organization or user.
ALTER TABLE licenses ADD COLUMN name TEXT;
