//! Calendar dates taken from clients: `YYYY-MM-DD` within a sane span, so no later date arithmetic can
//! overflow (chrono's parser alone takes years from -262143 to 262142).

use chrono::{Datelike, NaiveDate};

/// Earliest and latest year a client may name.
pub const EARLIEST_YEAR: i32 = 1900;
pub const LATEST_YEAR: i32 = 2199;

/// The date `raw` names (`YYYY-MM-DD`, surrounding spaces ignored), if it is one within
/// [`EARLIEST_YEAR`]..=[`LATEST_YEAR`].
pub fn parse_day(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .ok()
        .filter(|date| (EARLIEST_YEAR..=LATEST_YEAR).contains(&date.year()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dates_within_the_span_are_taken() {
        assert_eq!(parse_day(" 2026-12-07 "), NaiveDate::from_ymd_opt(2026, 12, 7));
        for raw in [
            "-262143-01-01",
            "+262142-12-31",
            "1899-12-31",
            "2200-01-01",
            "2026-02-30",
            "07-12-2026",
            "",
        ] {
            assert_eq!(parse_day(raw), None, "{raw}");
        }
    }
}
