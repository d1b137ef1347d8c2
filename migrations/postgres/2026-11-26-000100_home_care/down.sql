DROP TABLE care_partner_window_loads;
DROP TABLE care_partner_services;
DROP TABLE care_partners;
-- Backend-specific from here: en_route goes back to confirmed and the status check loses it.
UPDATE service_bookings SET status = 'confirmed' WHERE status = 'en_route';
ALTER TABLE service_bookings DROP CONSTRAINT service_bookings_status_check;
ALTER TABLE service_bookings ADD CONSTRAINT service_bookings_status_check CHECK (status IN ('requested', 'confirmed',
    'assigned', 'in_progress', 'completed', 'cancelled'));
