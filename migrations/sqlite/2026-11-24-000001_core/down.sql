DROP TABLE audit_log;
DROP TABLE idempotency_keys;
DROP TABLE otp_codes;
DROP TABLE addresses;
DROP TABLE users;
