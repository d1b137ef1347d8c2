-- Position flushes rewrite every moving unit's row every few seconds. Nothing queries units by H3
-- cell (the live index is in memory), so its index only made each of those writes update an index.
DROP INDEX units_h3_idx;
-- Backend-specific from here
-- Room left on each page lets PostgreSQL rewrite a unit's row in place (heap-only, no index entry).
ALTER TABLE units SET (fillfactor = 50);
