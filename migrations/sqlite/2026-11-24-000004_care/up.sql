-- Care: hospitals with live bed counts, doctors with weekly schedules, bookable slots and appointments,
-- home-care bookings and insurance policies.

-- Bed counts are claimed with conditional writes (beds_icu_available > 0) and bumped with version.
CREATE TABLE hospitals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    city TEXT NOT NULL,
    pincode TEXT NOT NULL,
    phone TEXT,
    lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng REAL NOT NULL CHECK (lng BETWEEN -180 AND 180),
    h3_cell BIGINT,
    emergency_capable BOOLEAN NOT NULL DEFAULT TRUE,
    specialties TEXT NOT NULL DEFAULT '[]',
    beds_general_total INTEGER NOT NULL DEFAULT 0 CHECK (beds_general_total >= 0),
    beds_general_available INTEGER NOT NULL DEFAULT 0
        CHECK (beds_general_available >= 0 AND beds_general_available <= beds_general_total),
    beds_icu_total INTEGER NOT NULL DEFAULT 0 CHECK (beds_icu_total >= 0),
    beds_icu_available INTEGER NOT NULL DEFAULT 0
        CHECK (beds_icu_available >= 0 AND beds_icu_available <= beds_icu_total),
    beds_emergency_total INTEGER NOT NULL DEFAULT 0 CHECK (beds_emergency_total >= 0),
    beds_emergency_available INTEGER NOT NULL DEFAULT 0
        CHECK (beds_emergency_available >= 0 AND beds_emergency_available <= beds_emergency_total),
    partner_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX hospitals_h3_idx ON hospitals (h3_cell);
CREATE INDEX hospitals_name_idx ON hospitals (lower(name));
CREATE INDEX hospitals_partner_idx ON hospitals (partner_user_id);

CREATE TABLE doctors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    hospital_id BIGINT REFERENCES hospitals (id) ON DELETE SET NULL,
    specialty TEXT NOT NULL,
    qualifications TEXT NOT NULL,
    registration_number TEXT UNIQUE,
    experience_years INTEGER NOT NULL DEFAULT 0 CHECK (experience_years >= 0),
    languages TEXT NOT NULL DEFAULT '[]',
    fee_paise BIGINT NOT NULL CHECK (fee_paise >= 0),
    video_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    rating REAL NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    rating_count INTEGER NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    bio TEXT,
    photo_url TEXT,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX doctors_specialty_idx ON doctors (specialty, is_active);
CREATE INDEX doctors_hospital_idx ON doctors (hospital_id);

-- Weekly template from which doctor_slots are generated. weekday: 0 = Monday .. 6 = Sunday
-- (chrono's num_days_from_monday); minutes are minutes after local midnight (Asia/Kolkata).
CREATE TABLE doctor_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doctor_id BIGINT NOT NULL REFERENCES doctors (id) ON DELETE CASCADE,
    weekday INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_minute INTEGER NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute INTEGER NOT NULL CHECK (end_minute > start_minute AND end_minute <= 1440),
    slot_minutes INTEGER NOT NULL DEFAULT 15 CHECK (slot_minutes > 0),
    mode TEXT NOT NULL DEFAULT 'both' CHECK (mode IN ('in_person', 'video', 'both')),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX doctor_schedules_doctor_idx ON doctor_schedules (doctor_id, weekday);

-- A slot is held (status 'held', hold_expires_at) then booked with conditional status changes;
-- UNIQUE (doctor_id, slot_start) makes slot generation idempotent.
CREATE TABLE doctor_slots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doctor_id BIGINT NOT NULL REFERENCES doctors (id) ON DELETE CASCADE,
    slot_start TIMESTAMP NOT NULL,
    slot_end TIMESTAMP NOT NULL,
    mode TEXT NOT NULL DEFAULT 'both' CHECK (mode IN ('in_person', 'video', 'both')),
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'held', 'booked', 'blocked')),
    held_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    hold_expires_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (doctor_id, slot_start),
    CHECK (slot_end > slot_start),
    CHECK (status <> 'held' OR (held_by IS NOT NULL AND hold_expires_at IS NOT NULL))
);
CREATE INDEX doctor_slots_status_idx ON doctor_slots (status, slot_start);
CREATE INDEX doctor_slots_hold_idx ON doctor_slots (hold_expires_at);

CREATE TABLE appointments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slot_id BIGINT NOT NULL REFERENCES doctor_slots (id) ON DELETE RESTRICT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    doctor_id BIGINT NOT NULL REFERENCES doctors (id) ON DELETE RESTRICT,
    patient_name TEXT NOT NULL,
    reason TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('in_person', 'video')),
    status TEXT NOT NULL DEFAULT 'pending_payment' CHECK (status IN ('pending_payment', 'confirmed',
        'completed', 'cancelled', 'no_show')),
    fee_paise BIGINT NOT NULL CHECK (fee_paise >= 0),
    payment_id BIGINT REFERENCES payments (id) ON DELETE SET NULL,
    video_room TEXT,
    doctor_notes TEXT,
    cancel_reason TEXT,
    cancelled_at TIMESTAMP,
    completed_at TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
-- One live appointment per slot: a second booking of the same slot fails on this index.
CREATE UNIQUE INDEX appointments_active_slot_uidx ON appointments (slot_id) WHERE status <> 'cancelled';
CREATE INDEX appointments_user_idx ON appointments (user_id, created_at);
CREATE INDEX appointments_doctor_idx ON appointments (doctor_id, status);

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
        'in_progress', 'completed', 'cancelled')),
    partner_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    assigned_at TIMESTAMP,
    completed_at TIMESTAMP,
    cancel_reason TEXT,
    notes TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX service_bookings_user_idx ON service_bookings (user_id, created_at);
CREATE INDEX service_bookings_status_idx ON service_bookings (status, slot_date);
CREATE INDEX service_bookings_partner_idx ON service_bookings (partner_user_id, slot_date);

CREATE TABLE insurance_purchases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    plan_id BIGINT NOT NULL REFERENCES insurance_plans (id) ON DELETE RESTRICT,
    status TEXT NOT NULL DEFAULT 'pending_payment' CHECK (status IN ('pending_payment', 'active', 'expired',
        'cancelled')),
    policy_number TEXT UNIQUE,
    proposer_name TEXT NOT NULL,
    insured_members TEXT NOT NULL DEFAULT '[]',
    cover_paise BIGINT NOT NULL CHECK (cover_paise > 0),
    premium_paise BIGINT NOT NULL CHECK (premium_paise > 0),
    starts_on DATE,
    ends_on DATE,
    payment_id BIGINT REFERENCES payments (id) ON DELETE SET NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (ends_on IS NULL OR starts_on IS NULL OR ends_on > starts_on),
    CHECK (status <> 'active' OR (policy_number IS NOT NULL AND starts_on IS NOT NULL AND ends_on IS NOT NULL))
);
CREATE INDEX insurance_purchases_user_idx ON insurance_purchases (user_id, created_at);
CREATE INDEX insurance_purchases_plan_idx ON insurance_purchases (plan_id);
