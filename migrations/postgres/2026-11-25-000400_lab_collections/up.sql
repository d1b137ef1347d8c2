-- Home lab collections: each phlebotomist's load per slot window, the capacity counter claimed by a
-- conditional write (UPDATE … SET assigned = assigned + 1 WHERE … AND assigned < $capacity), so two
-- nodes never give a collector more collections in one window than their capacity.
CREATE TABLE phlebotomist_window_loads (
    phlebotomist_id BIGINT NOT NULL REFERENCES phlebotomists (id) ON DELETE CASCADE,
    slot_date DATE NOT NULL,
    slot_window TEXT NOT NULL,
    assigned INTEGER NOT NULL DEFAULT 0 CHECK (assigned >= 0),
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (phlebotomist_id, slot_date, slot_window)
);
