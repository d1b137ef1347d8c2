ALTER TABLE orders DROP COLUMN dispatch_lease_until;
ALTER TABLE orders DROP COLUMN dispatch_node;
-- Backend-specific from here
DROP INDEX ambulance_requests_waiting_idx;
ALTER TABLE ambulance_requests DROP COLUMN dispatch_lease_until;
ALTER TABLE ambulance_requests DROP COLUMN dispatch_node;
UPDATE ambulance_requests SET status = 'requested' WHERE status = 'queued';
ALTER TABLE ambulance_requests DROP CONSTRAINT ambulance_requests_status_check;
ALTER TABLE ambulance_requests ADD CONSTRAINT ambulance_requests_status_check CHECK (status IN ('requested',
    'offered', 'assigned', 'en_route', 'on_scene', 'transporting', 'at_destination', 'handed_over', 'closed',
    'cancelled', 'no_unit_available', 'escalated'));
