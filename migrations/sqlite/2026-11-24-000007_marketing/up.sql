-- Marketing: coupons, homepage banners, promotional offers, campaigns and the notifications users read.

-- value is a percentage (1..100) for kind 'percent' and paise for kind 'flat'. Redeeming is one
-- conditional write: used_count = used_count + 1 WHERE global_limit IS NULL OR used_count < global_limit.
CREATE TABLE coupons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('percent', 'flat')),
    value BIGINT NOT NULL CHECK (value > 0),
    applies_to TEXT NOT NULL DEFAULT 'medicines' CHECK (applies_to IN ('all', 'medicines', 'lab_tests',
        'appointments', 'services')),
    min_order_paise BIGINT NOT NULL DEFAULT 0 CHECK (min_order_paise >= 0),
    max_discount_paise BIGINT CHECK (max_discount_paise > 0),
    starts_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ends_at TIMESTAMP,
    global_limit INTEGER CHECK (global_limit > 0),
    per_user_limit INTEGER CHECK (per_user_limit > 0),
    first_order_only BOOLEAN NOT NULL DEFAULT FALSE,
    used_count INTEGER NOT NULL DEFAULT 0 CHECK (used_count >= 0),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK (kind <> 'percent' OR value <= 100),
    CHECK (global_limit IS NULL OR used_count <= global_limit),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX coupons_active_idx ON coupons (is_active, ends_at);

CREATE TABLE banners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    subtitle TEXT,
    image_url TEXT NOT NULL,
    link_url TEXT,
    placement TEXT NOT NULL DEFAULT 'home_hero' CHECK (placement IN ('home_hero', 'home_strip', 'medicines',
        'lab_tests', 'doctors', 'services', 'insurance')),
    starts_at TIMESTAMP,
    ends_at TIMESTAMP,
    sort_order INTEGER NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX banners_placement_idx ON banners (placement, is_active, sort_order);

CREATE TABLE offers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    image_url TEXT,
    badge TEXT,
    applies_to TEXT NOT NULL DEFAULT 'all' CHECK (applies_to IN ('all', 'medicines', 'lab_tests',
        'appointments', 'services', 'insurance')),
    coupon_id BIGINT REFERENCES coupons (id) ON DELETE SET NULL,
    terms TEXT,
    starts_at TIMESTAMP,
    ends_at TIMESTAMP,
    sort_order INTEGER NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX offers_active_idx ON offers (is_active, sort_order);
CREATE INDEX offers_coupon_idx ON offers (coupon_id);

-- audience: JSON filter (roles, cities, ...) evaluated when the campaign is sent.
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('in_app', 'push', 'email', 'sms')),
    audience TEXT NOT NULL DEFAULT '{}',
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'scheduled', 'sending', 'sent',
        'cancelled')),
    scheduled_at TIMESTAMP,
    sent_at TIMESTAMP,
    sent_count INTEGER NOT NULL DEFAULT 0 CHECK (sent_count >= 0),
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX campaigns_status_idx ON campaigns (status, scheduled_at);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    campaign_id BIGINT REFERENCES campaigns (id) ON DELETE SET NULL,
    read_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;
CREATE INDEX notifications_campaign_idx ON notifications (campaign_id);
