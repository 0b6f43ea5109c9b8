-- Version 13: an index of activations by product, in id order, for the admin API's list of an
-- account's activations (`GET /v1/admin/activations`, store `activations_page`). Activations carry
-- no account: a page is read one product's range at a time (every product of the account, or the
-- one asked for), each a range of this index from the cursor on, and checked against the account
-- through its license's primary key. Until now no index led with `product_id`: a product's
-- activations were a scan of the whole table. A license's activations keep `activations_license`.
CREATE INDEX activations_product ON activations(product_id, id);
