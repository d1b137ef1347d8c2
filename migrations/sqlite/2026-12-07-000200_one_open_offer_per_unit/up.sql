-- A unit holds at most one open offer of an emergency call or a delivery, whichever node made it: the
-- index is the lock that keeps two nodes' dispatchers from offering one crew two jobs at once. (Lab
-- collectors take several collections per window and are not bound by it.)
-- Older duplicates are closed first, keeping each unit's newest open offer.
UPDATE dispatch_offers SET status = 'expired', responded_at = CURRENT_TIMESTAMP
WHERE status = 'offered'
  AND request_kind IN ('ambulance_request', 'order')
  AND id NOT IN (
    SELECT MAX(id) FROM dispatch_offers
    WHERE status = 'offered' AND request_kind IN ('ambulance_request', 'order')
    GROUP BY unit_id
  );
CREATE UNIQUE INDEX dispatch_offers_one_open_per_unit ON dispatch_offers (unit_id)
WHERE status = 'offered' AND request_kind IN ('ambulance_request', 'order');
