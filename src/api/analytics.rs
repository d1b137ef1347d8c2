//! `/admin/analytics`: the back office's figures for a span of India days — orders by status and per
//! day with revenue, bookings per service, ambulance response times per ARP category and collector
//! utilisation (staff and administrators).

use std::collections::BTreeMap;

use actix_web::{get, web};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    Problems,
    emergency::{CategoryStats, category_stats},
};
use crate::{
    auth::{Authorized, extract::StaffOnly},
    db::{
        self, analytics,
        doctors::{IST_OFFSET, local_today},
        emergency,
        lab_collections::{WINDOWS, window_minutes},
    },
    domain::OrderStatus,
    error::{ApiError, ErrorBody},
    state::AppState,
};

/// The span shown when none is asked for: the last 30 India days, today included.
const DEFAULT_DAYS: i64 = 30;
/// The longest span one request may cover, in days.
pub const MAX_DAYS: i64 = 366;
/// The earliest and latest dates accepted (keeps every bound far inside both databases' ranges).
const EARLIEST: (i32, u32, u32) = (2000, 1, 1);
const LATEST: (i32, u32, u32) = (2100, 12, 31);

#[derive(Debug, Deserialize, IntoParams)]
pub struct AnalyticsQuery {
    /// First India date of the span (`YYYY-MM-DD`); default 29 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last India date of the span, included; default today in India. At most 366 days in all.
    pub to: Option<NaiveDate>,
}

/// How many things are in one status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

/// One India day of orders.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderDay {
    pub date: NaiveDate,
    /// Orders placed that day, any status.
    pub orders: i64,
    /// Value of that day's orders that were paid online or delivered (cash on delivery), not refunded.
    pub revenue_paise: i64,
    /// Value of that day's orders whose payment was refunded.
    pub refunded_paise: i64,
}

/// Orders placed in the span.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderFigures {
    pub total: i64,
    /// Every status, in state-machine order, zero included.
    pub by_status: Vec<StatusCount>,
    pub revenue_paise: i64,
    pub refunded_paise: i64,
    /// Every day of the span, oldest first, zero days included.
    pub per_day: Vec<OrderDay>,
}

/// Bookings of one service made in the span. More services are more entries of this shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceBookings {
    /// `lab_collection`, `doctor_appointment` or `home_care`.
    pub service: String,
    pub total: i64,
    /// The statuses that occur, by name.
    pub by_status: Vec<StatusCount>,
}

/// One phlebotomist's load over the span's slot dates.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectorLoad {
    pub phlebotomist_id: i64,
    pub user_id: i64,
    pub name: String,
    pub is_active: bool,
    /// Collections (not cancelled) assigned for slot dates in the span.
    pub assigned: i64,
    /// Collections the collector could take in the span: days × bookable windows inside their working
    /// hours × capacity per window.
    pub capacity: i64,
    /// `assigned / capacity`, 0–1 (absent when the capacity is 0).
    pub utilisation: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Analytics {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: i64,
    pub orders: OrderFigures,
    pub bookings: Vec<ServiceBookings>,
    /// Call received → crew on scene, per ARP category, for calls received in the span (the same
    /// figures as `/emergency/stats`).
    pub ambulance_response: Vec<CategoryStats>,
    pub collectors: Vec<CollectorLoad>,
}

/// A validated span of India dates with its UTC bounds.
#[derive(Debug, Clone, Copy)]
struct Span {
    from: NaiveDate,
    to: NaiveDate,
    days: i64,
    /// India midnight starting `from`, in UTC.
    start: NaiveDateTime,
    /// India midnight after `to`, in UTC (excluded).
    end: NaiveDateTime,
}

fn span(query: &AnalyticsQuery, today: NaiveDate) -> Result<Span, ApiError> {
    let mut problems = Problems::default();
    let earliest = NaiveDate::from_ymd_opt(EARLIEST.0, EARLIEST.1, EARLIEST.2);
    let latest = NaiveDate::from_ymd_opt(LATEST.0, LATEST.1, LATEST.2);
    let (Some(earliest), Some(latest)) = (earliest, latest) else {
        return Err(ApiError::internal(anyhow::anyhow!("analytics date bounds")));
    };
    let to = query.to.unwrap_or(today);
    // Checked: `to` may be any date a client names (it is bounded just below).
    let from = query.from.unwrap_or_else(|| {
        to.checked_sub_signed(TimeDelta::days(DEFAULT_DAYS - 1))
            .unwrap_or(to)
    });
    for (field, date) in [("from", from), ("to", to)] {
        if !(earliest..=latest).contains(&date) {
            problems.add(field, format!("must be between {earliest} and {latest}"));
        }
    }
    let days = (to - from).num_days() + 1;
    if from > to {
        problems.add("from", "must not be after to");
    } else if days > MAX_DAYS {
        problems.add("to", format!("the span must be at most {MAX_DAYS} days"));
    }
    problems.finish()?;
    let midnight = |date: NaiveDate| date.and_time(chrono::NaiveTime::MIN) - IST_OFFSET;
    Ok(Span {
        from,
        to,
        days,
        start: midnight(from),
        end: midnight(to + TimeDelta::days(1)),
    })
}

/// Orders per day and status from the grouped rows.
fn order_figures(span: &Span, buckets: &[analytics::OrderBucket]) -> Result<OrderFigures, ApiError> {
    let mut per_day: BTreeMap<NaiveDate, OrderDay> = (0..span.days)
        .map(|offset| {
            let date = span.from + TimeDelta::days(offset);
            (
                date,
                OrderDay {
                    date,
                    orders: 0,
                    revenue_paise: 0,
                    refunded_paise: 0,
                },
            )
        })
        .collect();
    let mut by_status: BTreeMap<&str, i64> = BTreeMap::new();
    for bucket in buckets {
        let date = NaiveDate::parse_from_str(&bucket.day, "%Y-%m-%d")
            .map_err(|e| ApiError::internal(anyhow::anyhow!("order day {:?}: {e}", bucket.day)))?;
        let Some(day) = per_day.get_mut(&date) else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "order day {date} outside the span"
            )));
        };
        day.orders += bucket.orders;
        if bucket.payment_status == "refunded" {
            day.refunded_paise += bucket.total_paise;
        } else if bucket.payment_status == "paid" || bucket.status == OrderStatus::Delivered.as_str() {
            day.revenue_paise += bucket.total_paise;
        }
        *by_status.entry(bucket.status.as_str()).or_default() += bucket.orders;
    }
    let mut statuses: Vec<StatusCount> = OrderStatus::ALL
        .iter()
        .map(|status| StatusCount {
            status: status.as_str().to_owned(),
            count: by_status.remove(status.as_str()).unwrap_or(0),
        })
        .collect();
    statuses.extend(by_status.into_iter().map(|(status, count)| StatusCount {
        status: status.to_owned(),
        count,
    }));
    let per_day: Vec<OrderDay> = per_day.into_values().collect();
    Ok(OrderFigures {
        total: per_day.iter().map(|d| d.orders).sum(),
        by_status: statuses,
        revenue_paise: per_day.iter().map(|d| d.revenue_paise).sum(),
        refunded_paise: per_day.iter().map(|d| d.refunded_paise).sum(),
        per_day,
    })
}

/// One service's entry; statuses sorted by name here, not by the database (collations differ).
fn service(name: &str, mut counts: Vec<(String, i64)>) -> ServiceBookings {
    counts.sort();
    ServiceBookings {
        service: name.to_owned(),
        total: counts.iter().map(|(_, n)| n).sum(),
        by_status: counts
            .into_iter()
            .map(|(status, count)| StatusCount { status, count })
            .collect(),
    }
}

/// How many bookable collection windows lie inside working hours `[start, end]` (minutes).
fn windows_within(start: i32, end: i32) -> i64 {
    let inside = WINDOWS
        .iter()
        .filter_map(|w| window_minutes(w))
        .filter(|(s, e)| *s >= start && *e <= end)
        .count();
    i64::try_from(inside).unwrap_or(0)
}

fn collector_loads(
    span: &Span,
    collectors: Vec<analytics::CollectorHours>,
    assigned: &[(Option<i64>, i64)],
) -> Vec<CollectorLoad> {
    collectors
        .into_iter()
        .map(|c| {
            let assigned = assigned
                .iter()
                .find(|(id, _)| *id == Some(c.id))
                .map_or(0, |(_, n)| *n);
            let capacity = span.days
                * windows_within(c.work_start_minute, c.work_end_minute)
                * i64::from(c.capacity_per_window.max(0));
            CollectorLoad {
                phlebotomist_id: c.id,
                user_id: c.user_id,
                name: c.name,
                is_active: c.is_active,
                assigned,
                capacity,
                utilisation: (capacity > 0).then(|| assigned as f64 / capacity as f64),
            }
        })
        .collect()
}

/// The back office's figures for a span of India days (default the last 30, at most 366).
#[utoipa::path(
    tag = "admin",
    params(AnalyticsQuery),
    responses(
        (status = 200, body = Analytics),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/admin/analytics")]
#[tracing::instrument(skip_all, fields(from = ?query.from, to = ?query.to))]
pub async fn overview(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    query: web::Query<AnalyticsQuery>,
) -> Result<web::Json<Analytics>, ApiError> {
    let span = span(&query, local_today(db::now()))?;
    let mut conn = state.db.read().await?;
    let buckets = analytics::order_buckets(&mut conn, span.start, span.end).await?;
    let labs = analytics::lab_collections_by_status(&mut conn, span.start, span.end).await?;
    let appointments = analytics::appointments_by_status(&mut conn, span.start, span.end).await?;
    let home_care = analytics::service_bookings_by_status(&mut conn, span.start, span.end).await?;
    let responses = emergency::response_times_between(&mut conn, span.start, span.end).await?;
    let collectors = analytics::collectors(&mut conn).await?;
    let assigned = analytics::assigned_per_collector(&mut conn, span.from, span.to).await?;
    drop(conn);
    Ok(web::Json(Analytics {
        from: span.from,
        to: span.to,
        days: span.days,
        orders: order_figures(&span, &buckets)?,
        bookings: vec![
            service("lab_collection", labs),
            service("doctor_appointment", appointments),
            service("home_care", home_care),
        ],
        ambulance_response: category_stats(&responses),
        collectors: collector_loads(&span, collectors, &assigned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_span_starts_and_ends_at_india_midnight() {
        let query = AnalyticsQuery {
            from: Some(date("2026-11-01")),
            to: Some(date("2026-11-02")),
        };
        let span = span(&query, date("2026-11-25")).unwrap();
        assert_eq!(span.days, 2);
        assert_eq!(span.start.to_string(), "2026-10-31 18:30:00");
        assert_eq!(span.end.to_string(), "2026-11-02 18:30:00");
    }

    #[test]
    fn the_default_span_is_the_last_thirty_days() {
        let query = AnalyticsQuery { from: None, to: None };
        let span = span(&query, date("2026-11-25")).unwrap();
        assert_eq!(
            (span.from, span.to, span.days),
            (date("2026-10-27"), date("2026-11-25"), 30)
        );
    }

    #[test]
    fn spans_are_bounded() {
        let too_long = AnalyticsQuery {
            from: Some(date("2025-01-01")),
            to: Some(date("2026-01-02")),
        };
        assert!(span(&too_long, date("2026-11-25")).is_err());
        let leap_year = AnalyticsQuery {
            from: Some(date("2024-01-01")),
            to: Some(date("2024-12-31")),
        };
        assert_eq!(span(&leap_year, date("2026-11-25")).unwrap().days, 366);
        let backwards = AnalyticsQuery {
            from: Some(date("2026-02-01")),
            to: Some(date("2026-01-01")),
        };
        assert!(span(&backwards, date("2026-11-25")).is_err());
        let far = AnalyticsQuery {
            from: Some(date("1999-12-31")),
            to: Some(date("2000-01-01")),
        };
        assert!(span(&far, date("2026-11-25")).is_err());
    }

    #[test]
    fn windows_inside_working_hours_count_towards_capacity() {
        assert_eq!(windows_within(360, 1080), 8);
        assert_eq!(windows_within(480, 720), 3);
        assert_eq!(windows_within(0, 0), 0);
    }
}
