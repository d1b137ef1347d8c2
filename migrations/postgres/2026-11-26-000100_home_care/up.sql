-- Home care: partners who provide home-care services, with a home base, working hours and a capacity per
-- slot window. A booking claims one place in its partner's window by a conditional write
-- (UPDATE … SET booked = booked + 1 WHERE … AND booked < capacity), so no partner is ever given more
-- visits in one window than their capacity, however many nodes book at once.
CREATE TABLE care_partners (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    home_lat DOUBLE PRECISION NOT NULL CHECK (home_lat BETWEEN -90 AND 90),
    home_lng DOUBLE PRECISION NOT NULL CHECK (home_lng BETWEEN -180 AND 180),
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

-- Backend-specific from here: a partner on the way is a step of its own between confirmed and in_progress.
ALTER TABLE service_bookings DROP CONSTRAINT service_bookings_status_check;
ALTER TABLE service_bookings ADD CONSTRAINT service_bookings_status_check CHECK (status IN ('requested', 'confirmed',
    'assigned', 'en_route', 'in_progress', 'completed', 'cancelled'));
