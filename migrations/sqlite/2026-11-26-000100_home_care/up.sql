-- Home care: partners who provide home-care services, with a home base, working hours and a capacity per
-- slot window. A booking claims one place in its partner's window by a conditional write
-- (UPDATE … SET booked = booked + 1 WHERE … AND booked < capacity), so no partner is ever given more
-- visits in one window than their capacity, however many nodes book at once.
CREATE TABLE care_partners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    home_lat REAL NOT NULL CHECK (home_lat BETWEEN -90 AND 90),
    home_lng REAL NOT NULL CHECK (home_lng BETWEEN -180 AND 180),
    service_radius_km INTEGER NOT NULL DEFAULT 15 CHECK (service_radius_km BETWEEN 1 AND 100),
    work_start_minute INTEGER NOT NULL CHECK (work_start_minute BETWEEN 0 AND 1439),
    work_end_minute INTEGER NOT NULL CHECK (work_end_minute > work_start_minute AND work_end_minute <= 1440),
    capacity_per_window INTEGER NOT NULL CHECK (capacity_per_window BETWEEN 1 AND 50),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- The services each partner offers.
CREATE TABLE care_partner_services (
    partner_id BIGINT NOT NULL REFERENCES care_partners (id) ON DELETE CASCADE,
    service_id BIGINT NOT NULL REFERENCES homecare_services (id) ON DELETE CASCADE,
    PRIMARY KEY (partner_id, service_id)
);
CREATE INDEX care_partner_services_service_idx ON care_partner_services (service_id);

-- Each partner's booked visits per (day, window): the capacity counter.
CREATE TABLE care_partner_window_loads (
    partner_id BIGINT NOT NULL REFERENCES care_partners (id) ON DELETE CASCADE,
    slot_date DATE NOT NULL,
    slot_window TEXT NOT NULL,
    booked INTEGER NOT NULL DEFAULT 0 CHECK (booked >= 0),
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (partner_id, slot_date, slot_window)
);

-- Backend-specific from here: a partner on the way is a step of its own between confirmed and in_progress. SQLite cannot alter a
-- CHECK constraint, so the table is rebuilt under its own name (keeping its rows and ids).
CREATE TABLE service_bookings_rebuild AS SELECT * FROM service_bookings;
DROP TABLE service_bookings;
CREATE TABLE service_bookings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    service_id BIGINT NOT NULL REFERENCES homecare_services (id) ON DELETE RESTRICT,
    address_id BIGINT REFERENCES addresses (id) ON DELETE SET NULL,
    patient_name TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    address_text TEXT NOT NULL,
    lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng REAL NOT NULL CHECK (lng BETWEEN -180 AND 180),
    h3_cell BIGINT,
    slot_date DATE NOT NULL,
    slot_window TEXT NOT NULL,
    quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
    price_paise BIGINT NOT NULL CHECK (price_paise >= 0),
    payment_id BIGINT REFERENCES payments (id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'confirmed', 'assigned',
        'en_route', 'in_progress', 'completed', 'cancelled')),
    partner_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    assigned_at TIMESTAMP,
    completed_at TIMESTAMP,
    cancel_reason TEXT,
    notes TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO service_bookings SELECT * FROM service_bookings_rebuild;
DROP TABLE service_bookings_rebuild;
CREATE INDEX service_bookings_user_idx ON service_bookings (user_id, created_at);
CREATE INDEX service_bookings_status_idx ON service_bookings (status, slot_date);
CREATE INDEX service_bookings_partner_idx ON service_bookings (partner_user_id, slot_date);
