-- Every node rewrites dispatch_node/dispatch_lease_until of each waiting request it works once a second.
-- The waiting requests' index is keyed on the lease sweep's order (category, call time) instead of the
-- lease's expiry, so a renewal changes no indexed column and updates no index.
DROP INDEX ambulance_requests_waiting_idx;
CREATE INDEX ambulance_requests_waiting_idx ON ambulance_requests (category, call_received_at)
    WHERE status IN ('requested', 'offered', 'queued', 'no_unit_available', 'escalated');
-- Backend-specific from here
-- (SQLite has no fillfactor.)
