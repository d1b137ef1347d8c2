-- Proof of delivery, kept beside the order: the customer's one-time code sealed under a key derived
-- from the server secret (so the owner can read it back; orders.delivery_code_hash is what the rider's
-- entry is checked against), and the count of wrong entries, bounded by a conditional increment.
CREATE TABLE order_delivery_codes (
    order_id BIGINT NOT NULL PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
    code_sealed TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at TIMESTAMP NOT NULL
);
