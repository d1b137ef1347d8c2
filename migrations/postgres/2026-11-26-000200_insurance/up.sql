-- The plan terms a customer bought, fixed when the purchase is made: the policy issued on payment runs
-- for these months and waits these days, whatever the plan's row says later.
CREATE TABLE insurance_purchase_terms (
    purchase_id BIGINT NOT NULL PRIMARY KEY REFERENCES insurance_purchases (id) ON DELETE CASCADE,
    plan_name TEXT NOT NULL,
    insurer TEXT NOT NULL,
    tenure_months INTEGER NOT NULL CHECK (tenure_months > 0),
    initial_waiting_days INTEGER NOT NULL CHECK (initial_waiting_days >= 0),
    pre_existing_waiting_days INTEGER NOT NULL CHECK (pre_existing_waiting_days >= 0),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
