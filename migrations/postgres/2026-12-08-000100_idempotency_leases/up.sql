-- An in-flight Idempotency-Key is a short lease (renewed while its request runs), not a claim that
-- lasts as long as the stored response: a request whose node died is run again once its lease lapses.
-- `lease_token` names the run that holds the lease; only that run may store the response or let go.
ALTER TABLE idempotency_keys ADD COLUMN lease_token TEXT;
ALTER TABLE idempotency_keys ADD COLUMN lease_until TIMESTAMP;
