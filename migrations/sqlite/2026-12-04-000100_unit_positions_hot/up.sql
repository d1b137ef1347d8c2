-- Nothing queries units by H3 cell (the live index is in memory); the index only slowed position
-- flushes, which rewrite every moving unit's row every few seconds.
DROP INDEX units_h3_idx;
