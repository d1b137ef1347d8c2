-- The per-phone limit on one-time codes as one row per phone, claimed by one conditional upsert: the
-- row's lock, not a count read before an insert, decides how many codes a window issues.
CREATE TABLE otp_request_windows (
    phone TEXT PRIMARY KEY NOT NULL,
    window_start TIMESTAMP NOT NULL,
    issued INTEGER NOT NULL
);
