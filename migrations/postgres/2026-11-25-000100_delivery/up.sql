-- Proof of delivery: the customer's one-time code sealed under a key derived from the server secret (so
-- the owner can read it back; delivery_code_hash is what the rider's entry is checked against), and the
-- count of wrong entries, bounded by a conditional increment.
ALTER TABLE orders ADD COLUMN delivery_code_sealed TEXT;
ALTER TABLE orders ADD COLUMN delivery_attempts INTEGER NOT NULL DEFAULT 0;
