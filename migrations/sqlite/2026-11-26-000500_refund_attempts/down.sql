DROP INDEX refunds_due_idx;
DROP INDEX refunds_live_payment_idx;
ALTER TABLE refunds DROP COLUMN last_error;
ALTER TABLE refunds DROP COLUMN next_attempt_at;
ALTER TABLE refunds DROP COLUMN attempts;
