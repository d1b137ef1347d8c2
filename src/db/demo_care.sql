-- ONE MEDI demo city: home-care partners in Bengaluru, their home bases, hours (minutes after local
-- midnight), visits per booking window, and the services each offers. Portable SQL, like demo_city.sql.
INSERT INTO care_partners (user_id, home_lat, home_lng, service_radius_km, work_start_minute, work_end_minute,
    capacity_per_window) VALUES
    ((SELECT id FROM users WHERE email = 'carepartner1@demo.onemedi.in'), 12.9352, 77.6245, 12, 420, 1140, 2),
    ((SELECT id FROM users WHERE email = 'carepartner2@demo.onemedi.in'), 12.9784, 77.6408, 15, 540, 1260, 1),
    ((SELECT id FROM users WHERE email = 'carepartner3@demo.onemedi.in'), 12.9250, 77.5838, 20, 420, 1260, 3);

INSERT INTO care_partner_services (partner_id, service_id)
SELECT p.id, s.id FROM care_partners p, homecare_services s, users u
 WHERE u.id = p.user_id AND (
       (u.email = 'carepartner1@demo.onemedi.in' AND s.slug IN ('nursing-visit', 'injection-iv-drip-at-home'))
    OR (u.email = 'carepartner2@demo.onemedi.in' AND s.slug IN ('physiotherapy-session'))
    OR (u.email = 'carepartner3@demo.onemedi.in' AND s.slug IN ('nursing-visit', 'elder-care-attendant-12-hours',
        'doctor-home-visit', 'injection-iv-drip-at-home', 'physiotherapy-session')));
