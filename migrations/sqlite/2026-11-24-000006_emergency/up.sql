-- Emergency: ambulance requests with NEMSIS-style times, blood banks and their stock, donors,
-- blood requests with stock reservations and donor pledges.

-- category: 1 = immediately life-threatening .. 4 = non-urgent.
CREATE TABLE ambulance_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    requester_user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    pickup_lat REAL NOT NULL CHECK (pickup_lat BETWEEN -90 AND 90),
    pickup_lng REAL NOT NULL CHECK (pickup_lng BETWEEN -180 AND 180),
    pickup_address TEXT,
    h3_cell BIGINT,
    category INTEGER NOT NULL CHECK (category BETWEEN 1 AND 4),
    patient_name TEXT,
    patient_age INTEGER CHECK (patient_age BETWEEN 0 AND 130),
    patient_phone TEXT,
    patient_condition TEXT,
    notes TEXT,
    status TEXT NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'offered', 'assigned', 'en_route',
        'on_scene', 'transporting', 'at_destination', 'handed_over', 'closed', 'cancelled', 'no_unit_available',
        'escalated')),
    assigned_unit_id BIGINT REFERENCES units (id) ON DELETE SET NULL,
    destination_hospital_id BIGINT REFERENCES hospitals (id) ON DELETE SET NULL,
    cancel_reason TEXT,
    escalation_level INTEGER NOT NULL DEFAULT 0 CHECK (escalation_level >= 0),
    version BIGINT NOT NULL DEFAULT 1,
    call_received_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    notified_at TIMESTAMP,
    en_route_at TIMESTAMP,
    on_scene_at TIMESTAMP,
    transporting_at TIMESTAMP,
    at_destination_at TIMESTAMP,
    handed_over_at TIMESTAMP,
    back_in_service_at TIMESTAMP,
    closed_at TIMESTAMP,
    cancelled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- A unit works at most one live ambulance request.
CREATE UNIQUE INDEX ambulance_requests_active_unit_uidx ON ambulance_requests (assigned_unit_id)
    WHERE status IN ('assigned', 'en_route', 'on_scene', 'transporting', 'at_destination');
CREATE INDEX ambulance_requests_status_idx ON ambulance_requests (status, call_received_at);
CREATE INDEX ambulance_requests_requester_idx ON ambulance_requests (requester_user_id, created_at);
CREATE INDEX ambulance_requests_h3_idx ON ambulance_requests (h3_cell);
CREATE INDEX ambulance_requests_hospital_idx ON ambulance_requests (destination_hospital_id);

CREATE TABLE blood_banks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    partner_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    hospital_id BIGINT REFERENCES hospitals (id) ON DELETE SET NULL,
    license_number TEXT UNIQUE,
    phone TEXT,
    address TEXT NOT NULL,
    lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng REAL NOT NULL CHECK (lng BETWEEN -180 AND 180),
    h3_cell BIGINT,
    open_24x7 BOOLEAN NOT NULL DEFAULT TRUE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX blood_banks_h3_idx ON blood_banks (h3_cell);
CREATE INDEX blood_banks_partner_idx ON blood_banks (partner_user_id);

-- Reserving is one conditional write: units_available = units_available - n, units_reserved = units_reserved + n
-- WHERE units_available >= n.
CREATE TABLE blood_stock (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    blood_bank_id BIGINT NOT NULL REFERENCES blood_banks (id) ON DELETE CASCADE,
    blood_group TEXT NOT NULL CHECK (blood_group IN ('A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-')),
    component TEXT NOT NULL CHECK (component IN ('whole_blood', 'red_cells', 'plasma', 'platelets')),
    units_available INTEGER NOT NULL DEFAULT 0 CHECK (units_available >= 0),
    units_reserved INTEGER NOT NULL DEFAULT 0 CHECK (units_reserved >= 0),
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (blood_bank_id, blood_group, component)
);
CREATE INDEX blood_stock_group_idx ON blood_stock (blood_group, component);

CREATE TABLE donor_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    blood_group TEXT NOT NULL CHECK (blood_group IN ('A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-')),
    last_donation_date DATE,
    lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng REAL NOT NULL CHECK (lng BETWEEN -180 AND 180),
    h3_cell BIGINT,
    available BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX donor_profiles_group_idx ON donor_profiles (blood_group, available);
CREATE INDEX donor_profiles_h3_idx ON donor_profiles (h3_cell);

CREATE TABLE blood_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    requester_user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    patient_name TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    blood_group TEXT NOT NULL CHECK (blood_group IN ('A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-')),
    component TEXT NOT NULL CHECK (component IN ('whole_blood', 'red_cells', 'plasma', 'platelets')),
    units_needed INTEGER NOT NULL CHECK (units_needed > 0),
    hospital_id BIGINT REFERENCES hospitals (id) ON DELETE SET NULL,
    lat REAL CHECK (lat BETWEEN -90 AND 90),
    lng REAL CHECK (lng BETWEEN -180 AND 180),
    h3_cell BIGINT,
    urgency TEXT NOT NULL DEFAULT 'urgent' CHECK (urgency IN ('routine', 'urgent', 'critical')),
    -- The request lapses (status 'expired') at this time unless fulfilled first.
    expires_at TIMESTAMP NOT NULL,
    notes TEXT,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'partially_reserved', 'reserved', 'fulfilled',
        'cancelled', 'expired')),
    units_reserved INTEGER NOT NULL DEFAULT 0 CHECK (units_reserved >= 0),
    units_pledged INTEGER NOT NULL DEFAULT 0 CHECK (units_pledged >= 0),
    fulfilled_at TIMESTAMP,
    cancelled_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (hospital_id IS NOT NULL OR (lat IS NOT NULL AND lng IS NOT NULL))
);
CREATE INDEX blood_requests_status_idx ON blood_requests (status, urgency);
CREATE INDEX blood_requests_group_idx ON blood_requests (blood_group, component, status);
CREATE INDEX blood_requests_requester_idx ON blood_requests (requester_user_id, created_at);
CREATE INDEX blood_requests_h3_idx ON blood_requests (h3_cell);

-- Units of a bank's stock held for one request until collected, released or expired.
CREATE TABLE blood_reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BIGINT NOT NULL REFERENCES blood_requests (id) ON DELETE CASCADE,
    blood_stock_id BIGINT NOT NULL REFERENCES blood_stock (id) ON DELETE RESTRICT,
    reserved_units INTEGER NOT NULL CHECK (reserved_units > 0),
    status TEXT NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'collected', 'released', 'expired')),
    expires_at TIMESTAMP NOT NULL,
    collected_at TIMESTAMP,
    released_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX blood_reservations_request_idx ON blood_reservations (request_id);
CREATE INDEX blood_reservations_stock_idx ON blood_reservations (blood_stock_id, status);
CREATE INDEX blood_reservations_expiry_idx ON blood_reservations (status, expires_at);

CREATE TABLE blood_pledges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BIGINT NOT NULL REFERENCES blood_requests (id) ON DELETE CASCADE,
    donor_user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pledged' CHECK (status IN ('pledged', 'donated', 'cancelled', 'no_show')),
    pledged_units INTEGER NOT NULL DEFAULT 1 CHECK (pledged_units > 0),
    eta_at TIMESTAMP,
    donated_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (request_id, donor_user_id)
);
CREATE INDEX blood_pledges_donor_idx ON blood_pledges (donor_user_id);
