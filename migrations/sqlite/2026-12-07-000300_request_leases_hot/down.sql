DROP INDEX ambulance_requests_waiting_idx;
CREATE INDEX ambulance_requests_waiting_idx ON ambulance_requests (dispatch_lease_until)
    WHERE status IN ('requested', 'offered', 'queued', 'no_unit_available', 'escalated');
-- Backend-specific from here
