-- Position flushes rewrite every moving unit's row every few seconds. Nothing queries units by H3
-- cell (the live index is in memory), so its index only made each of those updates insert into every
-- index of the table; without it, and with room left on each page, they are heap-only (HOT) updates.
DROP INDEX units_h3_idx;
ALTER TABLE units SET (fillfactor = 50);
