-- Refunds are sent to the provider by a worker on any node: a refund is claimed for one attempt by a
-- conditional write that pushes next_attempt_at past the attempt's lease, failed attempts back off, and
-- at most one refund per payment is live (pending or processed) at any time.
ALTER TABLE refunds ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refunds ADD COLUMN next_attempt_at TIMESTAMP;
ALTER TABLE refunds ADD COLUMN last_error TEXT;
CREATE UNIQUE INDEX refunds_live_payment_idx ON refunds (payment_id) WHERE status <> 'failed';
CREATE INDEX refunds_due_idx ON refunds (status, next_attempt_at);
