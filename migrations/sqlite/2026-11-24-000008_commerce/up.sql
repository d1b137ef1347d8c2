-- Commerce: the medicine cart, orders with their lines and delivery, and coupon redemptions.

CREATE TABLE cart_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    medicine_id BIGINT NOT NULL REFERENCES medicines (id) ON DELETE CASCADE,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (user_id, medicine_id)
);
CREATE INDEX cart_items_medicine_idx ON cart_items (medicine_id);

-- The shipping address is copied into the order so later edits of the address book never rewrite history.
-- Per-status times live in entity_transitions; delivery_code_hash checks the code the customer tells the rider.
CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_number TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    address_id BIGINT REFERENCES addresses (id) ON DELETE SET NULL,
    ship_name TEXT NOT NULL,
    ship_phone TEXT NOT NULL,
    ship_address TEXT NOT NULL,
    ship_city TEXT NOT NULL,
    ship_pincode TEXT NOT NULL,
    ship_lat REAL NOT NULL CHECK (ship_lat BETWEEN -90 AND 90),
    ship_lng REAL NOT NULL CHECK (ship_lng BETWEEN -180 AND 180),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'packed', 'shipped',
        'out_for_delivery', 'delivered', 'cancelled')),
    subtotal_paise BIGINT NOT NULL CHECK (subtotal_paise >= 0),
    discount_paise BIGINT NOT NULL DEFAULT 0 CHECK (discount_paise >= 0 AND discount_paise <= subtotal_paise),
    tax_paise BIGINT NOT NULL DEFAULT 0 CHECK (tax_paise >= 0),
    delivery_paise BIGINT NOT NULL DEFAULT 0 CHECK (delivery_paise >= 0),
    total_paise BIGINT NOT NULL CHECK (total_paise >= 0),
    coupon_id BIGINT REFERENCES coupons (id) ON DELETE SET NULL,
    prescription_id BIGINT REFERENCES prescriptions (id) ON DELETE SET NULL,
    payment_method TEXT NOT NULL CHECK (payment_method IN ('razorpay', 'cod')),
    payment_status TEXT NOT NULL DEFAULT 'pending' CHECK (payment_status IN ('pending', 'paid', 'failed',
        'refunded')),
    rider_unit_id BIGINT REFERENCES units (id) ON DELETE SET NULL,
    delivery_code_hash TEXT,
    cancel_reason TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    placed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    delivered_at TIMESTAMP,
    cancelled_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX orders_user_idx ON orders (user_id, placed_at);
CREATE INDEX orders_status_idx ON orders (status, placed_at);
CREATE INDEX orders_rider_idx ON orders (rider_unit_id);
CREATE INDEX orders_coupon_idx ON orders (coupon_id);

CREATE TABLE order_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    medicine_id BIGINT NOT NULL REFERENCES medicines (id) ON DELETE RESTRICT,
    medicine_name TEXT NOT NULL,
    prescription_required BOOLEAN NOT NULL DEFAULT FALSE,
    unit_price_paise BIGINT NOT NULL CHECK (unit_price_paise >= 0),
    mrp_paise BIGINT NOT NULL CHECK (mrp_paise >= 0),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    line_total_paise BIGINT NOT NULL CHECK (line_total_paise = unit_price_paise * quantity),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (order_id, medicine_id)
);
CREATE INDEX order_items_medicine_idx ON order_items (medicine_id);

-- One redemption per order; per-user limits are counted through coupon_redemptions_user_idx.
CREATE TABLE coupon_redemptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    coupon_id BIGINT NOT NULL REFERENCES coupons (id) ON DELETE RESTRICT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    order_id BIGINT NOT NULL UNIQUE REFERENCES orders (id) ON DELETE CASCADE,
    discount_paise BIGINT NOT NULL CHECK (discount_paise >= 0),
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX coupon_redemptions_user_idx ON coupon_redemptions (coupon_id, user_id);
CREATE INDEX coupon_redemptions_by_user_idx ON coupon_redemptions (user_id);
