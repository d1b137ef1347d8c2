-- Payments for everything a customer pays for (orders, appointments, lab collections, home-care bookings,
-- insurance), the provider's webhook events and refunds. A payment names what it pays for by
-- (purpose, reference_id); the payable rows point back with payment_id.

CREATE TABLE payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    purpose TEXT NOT NULL CHECK (purpose IN ('order', 'appointment', 'lab_collection', 'service_booking',
        'insurance')),
    reference_id BIGINT NOT NULL,
    provider TEXT NOT NULL DEFAULT 'razorpay' CHECK (provider IN ('razorpay', 'cod')),
    -- Captures and webhooks are claimed by these unique provider ids, never by a lock.
    provider_order_id TEXT NOT NULL UNIQUE,
    provider_payment_id TEXT UNIQUE,
    provider_signature TEXT,
    method TEXT,
    amount_paise BIGINT NOT NULL CHECK (amount_paise > 0),
    refunded_paise BIGINT NOT NULL DEFAULT 0 CHECK (refunded_paise >= 0 AND refunded_paise <= amount_paise),
    currency TEXT NOT NULL DEFAULT 'INR' CHECK (currency = 'INR'),
    status TEXT NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'authorized', 'captured', 'failed',
        'refunded')),
    failure_reason TEXT,
    captured_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX payments_user_idx ON payments (user_id, created_at);
CREATE INDEX payments_reference_idx ON payments (purpose, reference_id);
CREATE INDEX payments_status_idx ON payments (status, created_at);

-- Webhook deliveries: a redelivered event hits the unique provider_event_id and is ignored.
CREATE TABLE payment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL DEFAULT 'razorpay' CHECK (provider IN ('razorpay', 'cod')),
    provider_event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    payment_id BIGINT REFERENCES payments (id) ON DELETE SET NULL,
    payload TEXT NOT NULL,
    signature_valid BOOLEAN NOT NULL,
    received_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    processed_at TIMESTAMP
);
CREATE INDEX payment_events_payment_idx ON payment_events (payment_id);

CREATE TABLE refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id BIGINT NOT NULL REFERENCES payments (id) ON DELETE RESTRICT,
    amount_paise BIGINT NOT NULL CHECK (amount_paise > 0),
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'failed')),
    provider_refund_id TEXT UNIQUE,
    requested_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    processed_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX refunds_payment_idx ON refunds (payment_id);
CREATE INDEX refunds_status_idx ON refunds (status);
