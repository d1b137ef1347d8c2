-- P4 baseline for pgbench: what one customer's loop does in SQL — refill the cart with two medicines,
-- then the checkout transaction of db/orders.rs::place: address with its user read, cart taken with
-- DELETE … RETURNING, stock claimed per medicine in id order by conditional decrement, coupon read,
-- order + delivery code + lines + timeline row inserted (lines returned), then, last, the coupon
-- redemption inserted, its use claimed (used_count < global_limit) and counted.
-- Variables (-D): first_user, users, first_address, first_med, meds, coupon.
\set u :first_user + (:client_id % :users)
\set a :first_address + (:client_id % :users)
\set half :meds / 2
\set m1 :first_med + random(0, :half - 1)
\set m2 :first_med + :half + random(0, :half - 1)
INSERT INTO cart_items (user_id, medicine_id, quantity, created_at, updated_at) VALUES (:u, :m1, 1, now(), now());
INSERT INTO cart_items (user_id, medicine_id, quantity, created_at, updated_at) VALUES (:u, :m2, 1, now(), now());
BEGIN;
SELECT addresses.id, addresses.user_id, addresses.label, addresses.line1, addresses.line2, addresses.city, addresses.state, addresses.pincode, addresses.lat, addresses.lng, users.name, users.phone FROM addresses INNER JOIN users ON users.id = addresses.user_id WHERE addresses.id = :a AND addresses.user_id = :u;
DELETE FROM cart_items WHERE user_id = :u RETURNING medicine_id, quantity;
UPDATE medicines SET stock = stock - 1, version = version + 1, updated_at = now() WHERE id = :m1 AND stock >= 1 AND is_active RETURNING name, price_paise, mrp_paise, gst_rate_percent, prescription_required;
UPDATE medicines SET stock = stock - 1, version = version + 1, updated_at = now() WHERE id = :m2 AND stock >= 1 AND is_active RETURNING name, price_paise, mrp_paise, gst_rate_percent, prescription_required;
SELECT id, code, kind, value, min_order_paise, max_discount_paise, starts_at, ends_at, global_limit, per_user_limit, first_order_only, used_count, is_active FROM coupons WHERE code = 'BENCHP4';
INSERT INTO orders (order_number, user_id, address_id, ship_name, ship_phone, ship_address, ship_city, ship_pincode, ship_lat, ship_lng, subtotal_paise, discount_paise, tax_paise, delivery_paise, total_paise, coupon_id, payment_method, placed_at, created_at, updated_at) VALUES ('PGB' || md5(random()::text), :u, :a, 'Bench User', '', '12 MG Road, Karnataka', 'Bengaluru', '560001', 12.97, 77.59, 20000, 2000, 2160, 4900, 25060, :coupon, 'cod', now(), now(), now()) RETURNING id \gset order_
INSERT INTO order_delivery_codes (order_id, code_sealed, created_at) VALUES (:order_id, '00112233445566778899aabbccddeeff.0011223344556677', now());
INSERT INTO order_items (order_id, medicine_id, medicine_name, prescription_required, unit_price_paise, mrp_paise, quantity, line_total_paise, created_at, gst_rate_percent) VALUES (:order_id, :m1, 'Bench medicine', false, 10000, 11000, 1, 10000, now(), 12) RETURNING medicine_id, medicine_name, prescription_required, unit_price_paise, mrp_paise, quantity, line_total_paise;
INSERT INTO order_items (order_id, medicine_id, medicine_name, prescription_required, unit_price_paise, mrp_paise, quantity, line_total_paise, created_at, gst_rate_percent) VALUES (:order_id, :m2, 'Bench medicine', false, 10000, 11000, 1, 10000, now(), 12) RETURNING medicine_id, medicine_name, prescription_required, unit_price_paise, mrp_paise, quantity, line_total_paise;
INSERT INTO entity_transitions (entity_type, entity_id, event, from_status, to_status, actor_user_id, at) VALUES ('order', :order_id, 'placed', NULL, 'pending', :u, now());
INSERT INTO coupon_redemptions (coupon_id, user_id, order_id, discount_paise, created_at) VALUES (:coupon, :u, :order_id, 2000, now());
UPDATE coupons SET used_count = used_count + 1, version = version + 1, updated_at = now() WHERE id = :coupon AND is_active AND (global_limit IS NULL OR used_count < global_limit);
SELECT count(*) FROM coupon_redemptions WHERE coupon_id = :coupon AND user_id = :u;
SELECT count(*) FROM orders WHERE user_id = :u AND status <> 'cancelled' AND id <> :order_id;
COMMIT;
