//! Coupons: lookup, the rules a cart must meet, and the conditional writes that claim and release a use.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Conn,
    schema::{coupon_redemptions, coupons, orders},
};
use crate::{
    domain::order::{DiscountRule, discount},
    on_conn,
};

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = coupons)]
pub struct Coupon {
    pub id: i64,
    pub code: String,
    pub description: String,
    pub kind: String,
    pub value: i64,
    pub applies_to: String,
    pub min_order_paise: i64,
    pub max_discount_paise: Option<i64>,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub global_limit: Option<i32>,
    pub per_user_limit: Option<i32>,
    pub first_order_only: bool,
    pub used_count: i32,
    pub is_active: bool,
}

/// Why a coupon does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponProblem {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exhausted(String),
}

impl Coupon {
    fn rule(&self) -> Option<DiscountRule> {
        match self.kind.as_str() {
            "percent" => Some(DiscountRule::Percent(self.value)),
            "flat" => Some(DiscountRule::Flat(self.value)),
            _ => None,
        }
    }

    /// The discount on a medicine cart of `subtotal_paise` at `now`, or why there is none. Usage limits
    /// are checked separately, against the database, when the use is claimed.
    pub fn discount_for(&self, subtotal_paise: i64, now: NaiveDateTime) -> Result<i64, CouponProblem> {
        let invalid = |m: &str| Err(CouponProblem::Invalid(m.to_owned()));
        if !self.is_active || !matches!(self.applies_to.as_str(), "all" | "medicines") {
            return invalid("this coupon does not apply to medicine orders");
        }
        if now < self.starts_at || self.ends_at.is_some_and(|end| now >= end) {
            return invalid("this coupon is not valid now");
        }
        if subtotal_paise < self.min_order_paise {
            return Err(CouponProblem::Invalid(format!(
                "this coupon needs an order of at least {} paise",
                self.min_order_paise
            )));
        }
        if self.global_limit.is_some_and(|limit| self.used_count >= limit) {
            return Err(CouponProblem::Exhausted(
                "this coupon has no uses left".to_owned(),
            ));
        }
        let Some(rule) = self.rule() else {
            return invalid("this coupon is misconfigured");
        };
        Ok(discount(rule, subtotal_paise, self.max_discount_paise))
    }
}

/// Codes are compared upper-cased and trimmed.
pub fn normalise_code(code: &str) -> String {
    code.trim().to_uppercase()
}

pub async fn find_by_code(conn: &mut Conn, code: &str) -> QueryResult<Option<Coupon>> {
    let code = normalise_code(code);
    on_conn!(conn, c => coupons::table
        .filter(coupons::code.eq(&code))
        .select(Coupon::as_select())
        .first(c)
        .await
        .optional())
}

/// Checks the per-user rules (per-user limit, first order only) for `user_id`.
pub async fn check_user_rules(
    conn: &mut Conn,
    coupon: &Coupon,
    user_id: i64,
) -> QueryResult<Result<(), CouponProblem>> {
    let counts = on_conn!(conn, c => async {
        let used: i64 = coupon_redemptions::table
            .filter(coupon_redemptions::coupon_id.eq(coupon.id).and(coupon_redemptions::user_id.eq(user_id)))
            .count()
            .get_result(c)
            .await?;
        let earlier_orders: i64 = orders::table
            .filter(orders::user_id.eq(user_id).and(orders::status.ne("cancelled")))
            .count()
            .get_result(c)
            .await?;
        QueryResult::Ok((used, earlier_orders))
    }.await);
    let (used, earlier_orders) = counts?;
    Ok(user_rules(coupon, used, earlier_orders))
}

/// The per-user rules given how often this user redeemed the coupon and how many live orders they have.
pub fn user_rules(coupon: &Coupon, used_by_user: i64, earlier_orders: i64) -> Result<(), CouponProblem> {
    if coupon
        .per_user_limit
        .is_some_and(|limit| used_by_user >= i64::from(limit))
    {
        return Err(CouponProblem::Exhausted(
            "you have used this coupon as often as it allows".to_owned(),
        ));
    }
    if coupon.first_order_only && earlier_orders > 0 {
        return Err(CouponProblem::Invalid(
            "this coupon is for a first order only".to_owned(),
        ));
    }
    Ok(())
}

#[derive(Debug, Insertable)]
#[diesel(table_name = coupons)]
pub struct NewCoupon {
    pub code: String,
    pub description: String,
    pub kind: String,
    pub value: i64,
    pub applies_to: String,
    pub min_order_paise: i64,
    pub max_discount_paise: Option<i64>,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub global_limit: Option<i32>,
    pub per_user_limit: Option<i32>,
    pub first_order_only: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub async fn insert(conn: &mut Conn, new: &NewCoupon) -> QueryResult<Coupon> {
    on_conn!(conn, c => diesel::insert_into(coupons::table)
        .values(new)
        .returning(Coupon::as_returning())
        .get_result(c)
        .await)
}

/// Editable fields of a coupon (its code never changes: it is printed on banners and in messages).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = coupons, treat_none_as_null = true)]
pub struct CouponChange {
    pub description: String,
    pub kind: String,
    pub value: i64,
    pub applies_to: String,
    pub min_order_paise: i64,
    pub max_discount_paise: Option<i64>,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub global_limit: Option<i32>,
    pub per_user_limit: Option<i32>,
    pub first_order_only: bool,
    pub is_active: bool,
}

/// Every coupon, newest first.
pub async fn list(conn: &mut Conn, limit: i64, offset: i64) -> QueryResult<(Vec<Coupon>, i64)> {
    on_conn!(conn, c => {
        let rows = coupons::table
            .order(coupons::id.desc())
            .limit(limit)
            .offset(offset)
            .select(Coupon::as_select())
            .load(c)
            .await?;
        let total: i64 = coupons::table.count().get_result(c).await?;
        Ok((rows, total))
    })
}

/// Applies `change` unless it would set the global limit below the uses already counted (concurrent
/// checkouts keep counting; the condition is checked in the same statement). `Ok(None)`: no such
/// coupon, or the limit is below the count.
pub async fn update(conn: &mut Conn, id: i64, change: &CouponChange) -> QueryResult<Option<Coupon>> {
    let now = super::now();
    let floor = change.global_limit.unwrap_or(i32::MAX);
    on_conn!(conn, c => diesel::update(
            coupons::table.find(id).filter(coupons::used_count.le(floor)),
        )
        .set((change, coupons::version.eq(coupons::version + 1), coupons::updated_at.eq(now)))
        .returning(Coupon::as_returning())
        .get_result(c)
        .await
        .optional())
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<Coupon>> {
    on_conn!(conn, c => coupons::table.find(id).select(Coupon::as_select()).first(c).await.optional())
}
