-- Field fleet: units (ambulances, delivery riders, phlebotomists) with their crews and last known
-- positions, dispatch offers, the audit timeline of every state machine, and home sample collections.

-- A unit is claimed with one conditional write:
-- UPDATE units SET status = 'assigned', request_kind = $k, request_id = $r, version = version + 1
--   WHERE id = $u AND status = 'available'.
-- (request_kind, request_id) names the current assignment (an ambulance request, a medicine order's
-- delivery, a lab collection or a blood request, as the actors' EntityKind names them), so request_id
-- carries no foreign key.
CREATE TABLE units (
    id BIGSERIAL PRIMARY KEY,
    call_sign TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('als', 'bls', 'rider', 'phlebotomist')),
    status TEXT NOT NULL DEFAULT 'off_duty' CHECK (status IN ('off_duty', 'available', 'offered', 'assigned',
        'en_route', 'on_scene', 'transporting', 'at_destination', 'busy', 'unavailable')),
    -- Equipment and skills as a bit set (defibrillator, ventilator, neonatal, cold chain, ...).
    capabilities INTEGER NOT NULL DEFAULT 0 CHECK (capabilities >= 0),
    request_kind TEXT CHECK (request_kind IN ('ambulance_request', 'order', 'lab_collection', 'blood_request')),
    request_id BIGINT,
    vehicle_number TEXT,
    station_name TEXT,
    home_lat DOUBLE PRECISION NOT NULL CHECK (home_lat BETWEEN -90 AND 90),
    home_lng DOUBLE PRECISION NOT NULL CHECK (home_lng BETWEEN -180 AND 180),
    last_lat DOUBLE PRECISION CHECK (last_lat BETWEEN -90 AND 90),
    last_lng DOUBLE PRECISION CHECK (last_lng BETWEEN -180 AND 180),
    last_heading DOUBLE PRECISION CHECK (last_heading >= 0 AND last_heading < 360),
    last_speed_mps DOUBLE PRECISION CHECK (last_speed_mps >= 0),
    last_h3_cell BIGINT,
    last_seen_at TIMESTAMP,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX units_status_idx ON units (kind, status);
CREATE INDEX units_h3_idx ON units (last_h3_cell);
CREATE INDEX units_request_idx ON units (request_kind, request_id);

-- A person crews at most one unit at a time.
CREATE TABLE unit_crew (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    crew_role TEXT NOT NULL CHECK (crew_role IN ('paramedic', 'emt', 'driver', 'rider', 'phlebotomist')),
    is_lead BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX unit_crew_unit_idx ON unit_crew (unit_id);

-- Position trail, written in batches (not one row per ping) for replay and audit.
CREATE TABLE unit_positions (
    id BIGSERIAL PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    lat DOUBLE PRECISION NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng DOUBLE PRECISION NOT NULL CHECK (lng BETWEEN -180 AND 180),
    heading DOUBLE PRECISION CHECK (heading >= 0 AND heading < 360),
    speed_mps DOUBLE PRECISION CHECK (speed_mps >= 0),
    h3_cell BIGINT,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX unit_positions_unit_idx ON unit_positions (unit_id, recorded_at);

-- An offer of one request to one unit; a unit is never offered the same request twice.
CREATE TABLE dispatch_offers (
    id BIGSERIAL PRIMARY KEY,
    request_kind TEXT NOT NULL CHECK (request_kind IN ('ambulance_request', 'order', 'lab_collection',
        'blood_request')),
    request_id BIGINT NOT NULL,
    unit_id BIGINT NOT NULL REFERENCES units (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'offered' CHECK (status IN ('offered', 'accepted', 'declined', 'expired',
        'taken')),
    distance_m DOUBLE PRECISION CHECK (distance_m >= 0),
    eta_seconds INTEGER CHECK (eta_seconds >= 0),
    decline_reason TEXT,
    offered_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at TIMESTAMP NOT NULL,
    responded_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    UNIQUE (request_kind, request_id, unit_id)
);
CREATE INDEX dispatch_offers_unit_idx ON dispatch_offers (unit_id, status);
CREATE INDEX dispatch_offers_status_idx ON dispatch_offers (status, expires_at);

-- Audit timeline of every state machine (ambulance_request, blood_request, order, doctor_slot,
-- lab_collection, unit, ...). A command retried with the same command_id hits the unique index and is
-- recognised as a replay. The actor is a user, a unit's crew device, or neither (the system).
CREATE TABLE entity_transitions (
    id BIGSERIAL PRIMARY KEY,
    entity_type TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    event TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    actor_unit_id BIGINT REFERENCES units (id) ON DELETE SET NULL,
    reason TEXT,
    command_id TEXT,
    details TEXT NOT NULL DEFAULT '{}',
    at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX entity_transitions_command_uidx ON entity_transitions (entity_type, entity_id, command_id);
CREATE INDEX entity_transitions_entity_idx ON entity_transitions (entity_type, entity_id, at);
CREATE INDEX entity_transitions_actor_idx ON entity_transitions (actor_user_id);
CREATE INDEX entity_transitions_actor_unit_idx ON entity_transitions (actor_unit_id);

-- working hours are minutes after local midnight; capacity is collections per slot window.
CREATE TABLE phlebotomists (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    unit_id BIGINT UNIQUE REFERENCES units (id) ON DELETE SET NULL,
    home_lat DOUBLE PRECISION NOT NULL CHECK (home_lat BETWEEN -90 AND 90),
    home_lng DOUBLE PRECISION NOT NULL CHECK (home_lng BETWEEN -180 AND 180),
    home_h3_cell BIGINT,
    work_start_minute INTEGER NOT NULL DEFAULT 360 CHECK (work_start_minute BETWEEN 0 AND 1439),
    work_end_minute INTEGER NOT NULL DEFAULT 840
        CHECK (work_end_minute > work_start_minute AND work_end_minute <= 1440),
    capacity_per_window INTEGER NOT NULL DEFAULT 3 CHECK (capacity_per_window > 0),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX phlebotomists_h3_idx ON phlebotomists (home_h3_cell);

CREATE TABLE lab_collections (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    address_id BIGINT REFERENCES addresses (id) ON DELETE SET NULL,
    patient_name TEXT NOT NULL,
    patient_age INTEGER CHECK (patient_age BETWEEN 0 AND 130),
    patient_gender TEXT CHECK (patient_gender IN ('female', 'male', 'other')),
    contact_phone TEXT NOT NULL,
    address_text TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng DOUBLE PRECISION NOT NULL CHECK (lng BETWEEN -180 AND 180),
    h3_cell BIGINT,
    slot_date DATE NOT NULL,
    slot_window TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'unassigned', 'assigned', 'en_route',
        'collected', 'at_lab', 'report_ready', 'cancelled')),
    phlebotomist_id BIGINT REFERENCES phlebotomists (id) ON DELETE SET NULL,
    unassigned_reason TEXT,
    total_paise BIGINT NOT NULL CHECK (total_paise >= 0),
    payment_id BIGINT REFERENCES payments (id) ON DELETE SET NULL,
    assigned_at TIMESTAMP,
    collected_at TIMESTAMP,
    at_lab_at TIMESTAMP,
    report_path TEXT,
    report_ready_at TIMESTAMP,
    cancel_reason TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX lab_collections_user_idx ON lab_collections (user_id, created_at);
CREATE INDEX lab_collections_slot_idx ON lab_collections (slot_date, slot_window, status);
CREATE INDEX lab_collections_phlebotomist_idx ON lab_collections (phlebotomist_id, slot_date);
CREATE INDEX lab_collections_status_idx ON lab_collections (status);

CREATE TABLE lab_collection_items (
    id BIGSERIAL PRIMARY KEY,
    lab_collection_id BIGINT NOT NULL REFERENCES lab_collections (id) ON DELETE CASCADE,
    lab_test_id BIGINT NOT NULL REFERENCES lab_tests (id) ON DELETE RESTRICT,
    test_name TEXT NOT NULL,
    sample_type TEXT NOT NULL,
    stability_hours INTEGER NOT NULL CHECK (stability_hours > 0),
    price_paise BIGINT NOT NULL CHECK (price_paise >= 0),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (lab_collection_id, lab_test_id)
);
CREATE INDEX lab_collection_items_test_idx ON lab_collection_items (lab_test_id);
