ALTER TABLE orders DROP COLUMN dispatch_lease_until;
ALTER TABLE orders DROP COLUMN dispatch_node;
-- Backend-specific from here
-- SQLite cannot alter a CHECK constraint: the table is rebuilt under its own name (the old one is
-- renamed aside first, so the new definition is stored exactly as written here).
UPDATE ambulance_requests SET status = 'requested' WHERE status = 'queued';
ALTER TABLE ambulance_requests RENAME TO ambulance_requests_previous;
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

INSERT INTO ambulance_requests (id, requester_user_id, pickup_lat, pickup_lng, pickup_address, h3_cell, category, patient_name, patient_age, patient_phone, patient_condition, notes, status, assigned_unit_id, destination_hospital_id, cancel_reason, escalation_level, version, call_received_at, notified_at, en_route_at, on_scene_at, transporting_at, at_destination_at, handed_over_at, back_in_service_at, closed_at, cancelled_at, created_at, updated_at)
    SELECT id, requester_user_id, pickup_lat, pickup_lng, pickup_address, h3_cell, category, patient_name, patient_age, patient_phone, patient_condition, notes, status, assigned_unit_id, destination_hospital_id, cancel_reason, escalation_level, version, call_received_at, notified_at, en_route_at, on_scene_at, transporting_at, at_destination_at, handed_over_at, back_in_service_at, closed_at, cancelled_at, created_at, updated_at FROM ambulance_requests_previous;
DROP TABLE ambulance_requests_previous;
-- A unit works at most one live ambulance request.
CREATE UNIQUE INDEX ambulance_requests_active_unit_uidx ON ambulance_requests (assigned_unit_id)
    WHERE status IN ('assigned', 'en_route', 'on_scene', 'transporting', 'at_destination');
CREATE INDEX ambulance_requests_status_idx ON ambulance_requests (status, call_received_at);
CREATE INDEX ambulance_requests_requester_idx ON ambulance_requests (requester_user_id, created_at);
CREATE INDEX ambulance_requests_h3_idx ON ambulance_requests (h3_cell);
CREATE INDEX ambulance_requests_hospital_idx ON ambulance_requests (destination_hospital_id);
