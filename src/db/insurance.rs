//! Health insurance: the plan catalog, purchases (pending until paid) with the plan terms fixed at
//! purchase, and the policy issued from a purchase exactly once, by the payment settlement
//! ([`super::payments::settle`]) in the transaction that captures the payment.

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    emergency::NewTransition,
    schema::{
        entity_transitions, insurance_plans as ip, insurance_purchase_terms as terms,
        insurance_purchases as pu,
    },
    with_retries,
};
use crate::on_conn;

/// The `entity_type` of purchases in `entity_transitions`.
pub const ENTITY: &str = "insurance_purchase";
/// `insurance_purchases.status` before payment.
pub const PENDING_PAYMENT: &str = "pending_payment";
/// `insurance_purchases.status` of an issued policy.
pub const ACTIVE: &str = "active";
/// The plan types of the catalog.
pub const PLAN_TYPES: [&str; 5] = [
    "individual",
    "family_floater",
    "senior_citizen",
    "critical_illness",
    "top_up",
];

/// A plan of the catalog.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ip)]
pub struct Plan {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub insurer: String,
    pub plan_type: String,
    pub description: Option<String>,
    pub cover_paise: i64,
    pub premium_paise: i64,
    pub tenure_months: i32,
    pub initial_waiting_days: i32,
    pub pre_existing_waiting_days: i32,
    pub min_entry_age: i32,
    pub max_entry_age: i32,
    pub max_members: i32,
    /// JSON array of strings.
    pub features: String,
}

/// Active plans in catalog order, optionally of one type; with the total.
pub async fn list_plans(
    conn: &mut Conn,
    plan_type: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Plan>, i64)> {
    on_conn!(conn, c => {
        let filtered = || {
            let mut query = ip::table.filter(ip::is_active.eq(true)).into_boxed();
            if let Some(plan_type) = plan_type {
                query = query.filter(ip::plan_type.eq(plan_type));
            }
            query
        };
        let rows = filtered()
            .order((ip::sort_order.asc(), ip::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(Plan::as_select())
            .load(c)
            .await?;
        let total = filtered().count().get_result::<i64>(c).await?;
        Ok((rows, total))
    })
}

/// An active plan.
pub async fn find_plan(conn: &mut Conn, id: i64) -> QueryResult<Option<Plan>> {
    on_conn!(conn, c => ip::table
        .filter(ip::id.eq(id).and(ip::is_active.eq(true)))
        .select(Plan::as_select())
        .first(c)
        .await
        .optional())
}

/// A stored purchase (a policy once `active`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pu)]
pub struct Purchase {
    pub id: i64,
    pub user_id: i64,
    pub plan_id: i64,
    pub status: String,
    pub policy_number: Option<String>,
    pub proposer_name: String,
    /// JSON array of the insured members.
    pub insured_members: String,
    pub cover_paise: i64,
    pub premium_paise: i64,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub payment_id: Option<i64>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The plan terms fixed at purchase.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = terms)]
pub struct Terms {
    pub plan_name: String,
    pub insurer: String,
    pub tenure_months: i32,
    pub initial_waiting_days: i32,
    pub pre_existing_waiting_days: i32,
}

/// A purchase to record, validated at the edge against `plan`.
#[derive(Debug, Clone)]
pub struct NewPurchase {
    pub user_id: i64,
    pub plan: Plan,
    pub proposer_name: String,
    pub insured_members: String,
}

/// Records a pending purchase and its terms in one transaction.
pub async fn create_purchase(conn: &mut Conn, purchase: NewPurchase) -> QueryResult<Purchase> {
    let now = super::now();
    with_retries(conn, async |conn| {
        let purchase = purchase.clone();
        on_conn!(conn, c => c.transaction(async move |c| {
            let plan = &purchase.plan;
            let row = diesel::insert_into(pu::table)
                .values((
                    pu::user_id.eq(purchase.user_id),
                    pu::plan_id.eq(plan.id),
                    pu::status.eq(PENDING_PAYMENT),
                    pu::proposer_name.eq(&purchase.proposer_name),
                    pu::insured_members.eq(&purchase.insured_members),
                    pu::cover_paise.eq(plan.cover_paise),
                    pu::premium_paise.eq(plan.premium_paise),
                    pu::created_at.eq(now),
                    pu::updated_at.eq(now),
                ))
                .returning(Purchase::as_returning())
                .get_result(c)
                .await?;
            diesel::insert_into(terms::table)
                .values((
                    terms::purchase_id.eq(row.id),
                    terms::plan_name.eq(&plan.name),
                    terms::insurer.eq(&plan.insurer),
                    terms::tenure_months.eq(plan.tenure_months),
                    terms::initial_waiting_days.eq(plan.initial_waiting_days),
                    terms::pre_existing_waiting_days.eq(plan.pre_existing_waiting_days),
                    terms::created_at.eq(now),
                ))
                .execute(c)
                .await?;
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: row.id,
                    event: "purchase",
                    from_status: None,
                    to_status: PENDING_PAYMENT,
                    actor_user_id: Some(purchase.user_id),
                    actor_unit_id: None,
                    reason: None,
                    command_id: None,
                    at: now,
                    details: None,
                })
                .execute(c)
                .await?;
            Ok(row)
        }).await)
    })
    .await
}

pub async fn find_purchase(conn: &mut Conn, id: i64) -> QueryResult<Option<Purchase>> {
    on_conn!(conn, c => pu::table.find(id).select(Purchase::as_select()).first(c).await.optional())
}

pub async fn terms_of(conn: &mut Conn, purchase: i64) -> QueryResult<Option<Terms>> {
    on_conn!(conn, c => terms::table.find(purchase).select(Terms::as_select()).first(c).await.optional())
}

/// A customer's issued policies (active or run out), newest first, with the total.
pub async fn list_policies(
    conn: &mut Conn,
    user: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Purchase>, i64)> {
    on_conn!(conn, c => {
        let mine = || pu::table.filter(pu::user_id.eq(user).and(pu::policy_number.is_not_null()));
        let rows = mine()
            .order((pu::created_at.desc(), pu::id.desc()))
            .limit(limit)
            .offset(offset)
            .select(Purchase::as_select())
            .load(c)
            .await?;
        let total = mine().count().get_result::<i64>(c).await?;
        Ok((rows, total))
    })
}

/// The cover period of a policy issued on `today` (India time) for `tenure_months`: from the next day,
/// ending the day before the same date `tenure_months` later (a 12-month policy from 1 Dec 2026 ends
/// 30 Nov 2027). `None` only for a tenure beyond the calendar.
pub fn cover_period(today: NaiveDate, tenure_months: i32) -> Option<(NaiveDate, NaiveDate)> {
    let starts = today.checked_add_signed(TimeDelta::days(1))?;
    let months = u32::try_from(tenure_months).ok().filter(|m| *m > 0)?;
    let ends = starts.checked_add_months(Months::new(months))?.pred_opt()?;
    Some((starts, ends))
}

/// The policy number of a purchase: unique because the purchase id is.
pub fn policy_number(purchase: i64, starts: NaiveDate) -> String {
    format!("OMH-{}-{purchase:08}", starts.year())
}

/// The first day each kind of claim is covered: (illness after the initial wait, pre-existing diseases).
pub fn covered_from(starts: NaiveDate, terms: &Terms) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let after = |days: i32| starts.checked_add_signed(TimeDelta::days(i64::from(days)));
    (
        after(terms.initial_waiting_days),
        after(terms.pre_existing_waiting_days),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_runs_from_the_next_day_for_its_term() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let (starts, ends) = cover_period(today, 12).unwrap();
        assert_eq!(starts, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(ends, NaiveDate::from_ymd_opt(2027, 11, 30).unwrap());
        let (_, ends) = cover_period(NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(), 24).unwrap();
        assert_eq!(ends, NaiveDate::from_ymd_opt(2029, 2, 28).unwrap());
        assert!(cover_period(today, 0).is_none());
        assert_eq!(policy_number(42, starts), "OMH-2026-00000042");
    }
}
