CREATE INDEX units_h3_idx ON units (last_h3_cell);
-- Backend-specific from here
