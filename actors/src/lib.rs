//! Live entities of ONE MEDI: supervised actors, the fleet index and dispatch.
