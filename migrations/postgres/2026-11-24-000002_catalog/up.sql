-- Catalog: medicines with their categories and brands, uploaded prescriptions, lab tests and packages,
-- home-care services and insurance plans.

CREATE TABLE medicine_categories (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    slug TEXT NOT NULL UNIQUE,
    description TEXT,
    image_url TEXT,
    sort_order INTEGER NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE brands (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    slug TEXT NOT NULL UNIQUE,
    manufacturer TEXT,
    logo_url TEXT,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- stock is claimed with one conditional write: UPDATE ... SET stock = stock - q WHERE id = m AND stock >= q.
CREATE TABLE medicines (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    salt_composition TEXT NOT NULL,
    brand_id BIGINT REFERENCES brands (id) ON DELETE SET NULL,
    category_id BIGINT NOT NULL REFERENCES medicine_categories (id) ON DELETE RESTRICT,
    description TEXT,
    dosage_form TEXT NOT NULL DEFAULT 'tablet' CHECK (dosage_form IN ('tablet', 'capsule', 'syrup',
        'suspension', 'injection', 'cream', 'gel', 'ointment', 'drops', 'inhaler', 'powder', 'sachet', 'other')),
    pack_size TEXT NOT NULL,
    image_url TEXT,
    price_paise BIGINT NOT NULL CHECK (price_paise >= 0),
    mrp_paise BIGINT NOT NULL CHECK (mrp_paise >= price_paise),
    gst_rate_percent INTEGER NOT NULL DEFAULT 12 CHECK (gst_rate_percent BETWEEN 0 AND 28),
    stock INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    max_per_order INTEGER NOT NULL DEFAULT 10 CHECK (max_per_order > 0),
    prescription_required BOOLEAN NOT NULL DEFAULT FALSE,
    featured BOOLEAN NOT NULL DEFAULT FALSE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX medicines_category_idx ON medicines (category_id, is_active);
CREATE INDEX medicines_brand_idx ON medicines (brand_id);
CREATE INDEX medicines_name_idx ON medicines (lower(name));
CREATE INDEX medicines_salt_idx ON medicines (lower(salt_composition));
CREATE INDEX medicines_featured_idx ON medicines (featured, is_active);

CREATE TABLE prescriptions (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_path TEXT NOT NULL,
    original_filename TEXT,
    content_type TEXT NOT NULL CHECK (content_type IN ('application/pdf', 'image/jpeg', 'image/png', 'image/webp')),
    size_bytes BIGINT NOT NULL CHECK (size_bytes > 0),
    sha256 TEXT NOT NULL,
    patient_name TEXT,
    doctor_name TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    reviewed_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    reviewed_at TIMESTAMP,
    review_notes TEXT,
    valid_until DATE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX prescriptions_user_idx ON prescriptions (user_id, created_at);
CREATE INDEX prescriptions_status_idx ON prescriptions (status, created_at);

CREATE TABLE lab_categories (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    slug TEXT NOT NULL UNIQUE,
    description TEXT,
    sort_order INTEGER NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- stability_hours: how long the sample survives between collection and the lab; routing must respect it.
CREATE TABLE lab_tests (
    id BIGSERIAL PRIMARY KEY,
    category_id BIGINT NOT NULL REFERENCES lab_categories (id) ON DELETE RESTRICT,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    description TEXT,
    sample_type TEXT NOT NULL CHECK (sample_type IN ('blood', 'urine', 'stool', 'swab', 'saliva', 'sputum',
        'mixed')),
    stability_hours INTEGER NOT NULL CHECK (stability_hours > 0),
    fasting_hours INTEGER NOT NULL DEFAULT 0 CHECK (fasting_hours >= 0),
    turnaround_hours INTEGER NOT NULL DEFAULT 24 CHECK (turnaround_hours > 0),
    price_paise BIGINT NOT NULL CHECK (price_paise >= 0),
    mrp_paise BIGINT NOT NULL CHECK (mrp_paise >= price_paise),
    is_package BOOLEAN NOT NULL DEFAULT FALSE,
    home_collection BOOLEAN NOT NULL DEFAULT TRUE,
    featured BOOLEAN NOT NULL DEFAULT FALSE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX lab_tests_category_idx ON lab_tests (category_id, is_active);
CREATE INDEX lab_tests_name_idx ON lab_tests (lower(name));

CREATE TABLE lab_test_package_items (
    id BIGSERIAL PRIMARY KEY,
    package_id BIGINT NOT NULL REFERENCES lab_tests (id) ON DELETE CASCADE,
    test_id BIGINT NOT NULL REFERENCES lab_tests (id) ON DELETE RESTRICT,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (package_id, test_id),
    CHECK (package_id <> test_id)
);
CREATE INDEX lab_test_package_items_test_idx ON lab_test_package_items (test_id);

CREATE TABLE homecare_services (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL CHECK (category IN ('nursing', 'physiotherapy', 'elder_care', 'doctor_visit',
        'procedure', 'mother_baby', 'other')),
    description TEXT,
    price_paise BIGINT NOT NULL CHECK (price_paise >= 0),
    price_unit TEXT NOT NULL DEFAULT 'visit' CHECK (price_unit IN ('visit', 'hour', 'day', 'session')),
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    image_url TEXT,
    sort_order INTEGER NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX homecare_services_category_idx ON homecare_services (category, is_active);

CREATE TABLE insurance_plans (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    insurer TEXT NOT NULL,
    plan_type TEXT NOT NULL CHECK (plan_type IN ('individual', 'family_floater', 'senior_citizen',
        'critical_illness', 'top_up')),
    description TEXT,
    cover_paise BIGINT NOT NULL CHECK (cover_paise > 0),
    premium_paise BIGINT NOT NULL CHECK (premium_paise > 0),
    tenure_months INTEGER NOT NULL DEFAULT 12 CHECK (tenure_months > 0),
    initial_waiting_days INTEGER NOT NULL DEFAULT 30 CHECK (initial_waiting_days >= 0),
    pre_existing_waiting_days INTEGER NOT NULL DEFAULT 0 CHECK (pre_existing_waiting_days >= 0),
    min_entry_age INTEGER NOT NULL DEFAULT 18 CHECK (min_entry_age >= 0),
    max_entry_age INTEGER NOT NULL DEFAULT 65 CHECK (max_entry_age >= min_entry_age),
    max_members INTEGER NOT NULL DEFAULT 1 CHECK (max_members > 0),
    features TEXT NOT NULL DEFAULT '[]',
    sort_order INTEGER NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX insurance_plans_type_idx ON insurance_plans (plan_type, is_active);
