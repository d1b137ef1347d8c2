-- The dispatch queue: an ambulance request nobody can take now is 'queued' (it stays with the engine,
-- re-dispatched on every change of supply), and the node working a request's or an order's dispatch
-- holds a lease on it: renewed while it works, claimed by another node by one conditional write once it
-- lapses (the row stays the only lock).
ALTER TABLE orders ADD COLUMN dispatch_node TEXT;
ALTER TABLE orders ADD COLUMN dispatch_lease_until TIMESTAMP;
-- Backend-specific from here
ALTER TABLE ambulance_requests DROP CONSTRAINT ambulance_requests_status_check;
ALTER TABLE ambulance_requests ADD CONSTRAINT ambulance_requests_status_check CHECK (status IN ('requested',
    'offered', 'assigned', 'en_route', 'on_scene', 'transporting', 'at_destination', 'handed_over', 'closed',
    'cancelled', 'no_unit_available', 'escalated', 'queued'));
ALTER TABLE ambulance_requests ADD COLUMN dispatch_node TEXT;
ALTER TABLE ambulance_requests ADD COLUMN dispatch_lease_until TIMESTAMP;
CREATE INDEX ambulance_requests_waiting_idx ON ambulance_requests (dispatch_lease_until)
    WHERE status IN ('requested', 'offered', 'queued', 'no_unit_available', 'escalated');
