ALTER TABLE orders DROP COLUMN delivery_attempts;
ALTER TABLE orders DROP COLUMN delivery_code_sealed;
