//! Marketing rows: homepage banners and offers with their active windows, campaigns, and the in-app
//! notifications inbox (written by campaigns and by order updates).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn,
    schema::{addresses, banners, campaigns, notifications, offers, users},
};
use crate::on_conn;

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = banners)]
pub struct Banner {
    pub id: i64,
    pub title: String,
    pub subtitle: Option<String>,
    pub image_url: String,
    pub link_url: Option<String>,
    /// `home_hero`, `home_strip`, `medicines`, `lab_tests`, `doctors`, `services` or `insurance`.
    pub placement: String,
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<NaiveDateTime>,
    pub sort_order: i32,
    pub is_active: bool,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = banners, treat_none_as_null = true)]
pub struct BannerChange {
    pub title: String,
    pub subtitle: Option<String>,
    pub image_url: String,
    pub link_url: Option<String>,
    pub placement: String,
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<NaiveDateTime>,
    pub sort_order: i32,
    pub is_active: bool,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = offers)]
pub struct Offer {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub image_url: Option<String>,
    pub badge: Option<String>,
    /// `all`, `medicines`, `lab_tests`, `appointments`, `services` or `insurance`.
    pub applies_to: String,
    pub coupon_id: Option<i64>,
    pub terms: Option<String>,
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<NaiveDateTime>,
    pub sort_order: i32,
    pub is_active: bool,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = offers, treat_none_as_null = true)]
pub struct OfferChange {
    pub title: String,
    pub description: String,
    pub image_url: Option<String>,
    pub badge: Option<String>,
    pub applies_to: String,
    pub coupon_id: Option<i64>,
    pub terms: Option<String>,
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<NaiveDateTime>,
    pub sort_order: i32,
    pub is_active: bool,
    pub updated_at: NaiveDateTime,
}

/// The staff side of a promotion table (banners, offers): one page of every row, newest first, with the
/// total; insert; and update by id (`None` when there is no such row).
macro_rules! promotion_rows {
    ($table:ident, $row:ty, $change:ty, $all:ident, $insert:ident, $update:ident) => {
        pub async fn $all(conn: &mut Conn, limit: i64, offset: i64) -> QueryResult<(Vec<$row>, i64)> {
            on_conn!(conn, c => {
                let total = $table::table.count().get_result(c).await?;
                let rows = $table::table
                    .order($table::id.desc())
                    .limit(limit)
                    .offset(offset)
                    .select(<$row>::as_select())
                    .load(c)
                    .await?;
                Ok((rows, total))
            })
        }

        pub async fn $insert(conn: &mut Conn, change: &$change) -> QueryResult<$row> {
            on_conn!(conn, c => diesel::insert_into($table::table)
                .values((change, $table::created_at.eq(change.updated_at)))
                .returning(<$row>::as_returning())
                .get_result(c)
                .await)
        }

        pub async fn $update(conn: &mut Conn, id: i64, change: &$change) -> QueryResult<Option<$row>> {
            on_conn!(conn, c => diesel::update($table::table.find(id))
                .set(change)
                .returning(<$row>::as_returning())
                .get_result(c)
                .await
                .optional())
        }
    };
}

promotion_rows!(
    banners,
    Banner,
    BannerChange,
    all_banners,
    insert_banner,
    update_banner
);
promotion_rows!(offers, Offer, OfferChange, all_offers, insert_offer, update_offer);

/// Active banners of a placement whose window holds `now`, in display order.
pub async fn live_banners(
    conn: &mut Conn,
    placement: Option<&str>,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Banner>> {
    on_conn!(conn, c => {
        let mut query = banners::table
            .filter(banners::is_active.eq(true))
            .filter(banners::starts_at.is_null().or(banners::starts_at.le(now)))
            .filter(banners::ends_at.is_null().or(banners::ends_at.gt(now)))
            .into_boxed();
        if let Some(placement) = placement {
            query = query.filter(banners::placement.eq(placement.to_owned()));
        }
        query
            .order((banners::sort_order.asc(), banners::id.asc()))
            .limit(limit)
            .select(Banner::as_select())
            .load(c)
            .await
    })
}

/// Active offers whose window holds `now`, in display order.
pub async fn live_offers(
    conn: &mut Conn,
    applies_to: Option<&str>,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Offer>> {
    on_conn!(conn, c => {
        let mut query = offers::table
            .filter(offers::is_active.eq(true))
            .filter(offers::starts_at.is_null().or(offers::starts_at.le(now)))
            .filter(offers::ends_at.is_null().or(offers::ends_at.gt(now)))
            .into_boxed();
        if let Some(applies_to) = applies_to {
            query = query.filter(offers::applies_to.eq_any([applies_to.to_owned(), "all".to_owned()]));
        }
        query
            .order((offers::sort_order.asc(), offers::id.asc()))
            .limit(limit)
            .select(Offer::as_select())
            .load(c)
            .await
    })
}

// ----------------------------------------------------------------------------------- notifications

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct Notification {
    pub id: i64,
    #[serde(skip)]
    pub user_id: i64,
    /// `order`, `campaign`, …
    pub kind: String,
    pub title: String,
    pub body: String,
    /// JSON object text with what the notification is about (e.g. `{"order_id": 7}`).
    pub data: String,
    pub campaign_id: Option<i64>,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// A notification about to be written.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    pub kind: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub data: &'a str,
    pub campaign_id: Option<i64>,
}

/// Writes one notification into `user_id`'s inbox.
pub async fn notify(conn: &mut Conn, user_id: i64, new: &NewNotification<'_>) -> QueryResult<Notification> {
    let now = super::now();
    on_conn!(conn, c => diesel::insert_into(notifications::table)
        .values((
            notifications::user_id.eq(user_id),
            notifications::kind.eq(new.kind),
            notifications::title.eq(new.title),
            notifications::body.eq(new.body),
            notifications::data.eq(new.data),
            notifications::campaign_id.eq(new.campaign_id),
            notifications::created_at.eq(now),
        ))
        .returning(Notification::as_returning())
        .get_result(c)
        .await)
}

/// One page of a user's inbox, newest first, with the total and the unread count.
pub async fn inbox(
    conn: &mut Conn,
    user_id: i64,
    unread_only: bool,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Notification>, i64, i64)> {
    on_conn!(conn, c => {
        let mine = || {
            let query = notifications::table.filter(notifications::user_id.eq(user_id)).into_boxed();
            if unread_only { query.filter(notifications::read_at.is_null()) } else { query }
        };
        let total = mine().count().get_result(c).await?;
        let unread = notifications::table
            .filter(notifications::user_id.eq(user_id).and(notifications::read_at.is_null()))
            .count()
            .get_result(c)
            .await?;
        let rows = mine()
            .order(notifications::id.desc())
            .limit(limit)
            .offset(offset)
            .select(Notification::as_select())
            .load(c)
            .await?;
        Ok((rows, total, unread))
    })
}

/// Marks one of the user's notifications read (once: the first read time stays); `None` if it is not
/// theirs.
pub async fn mark_read(conn: &mut Conn, user_id: i64, id: i64) -> QueryResult<Option<Notification>> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        diesel::update(notifications::table.filter(
            notifications::id.eq(id).and(notifications::user_id.eq(user_id)).and(notifications::read_at.is_null()),
        ))
        .set(notifications::read_at.eq(now))
        .execute(c)
        .await?;
        notifications::table
            .filter(notifications::id.eq(id).and(notifications::user_id.eq(user_id)))
            .select(Notification::as_select())
            .first(c)
            .await
            .optional()
    }).await)
}

/// Marks every unread notification of the user read; returns how many.
pub async fn mark_all_read(conn: &mut Conn, user_id: i64) -> QueryResult<usize> {
    let now = super::now();
    on_conn!(conn, c => diesel::update(notifications::table.filter(
        notifications::user_id.eq(user_id).and(notifications::read_at.is_null()),
    ))
    .set(notifications::read_at.eq(now))
    .execute(c)
    .await)
}

// ---------------------------------------------------------------------------------------- campaigns

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = campaigns)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    /// `in_app` (the notifications inbox, pushed live on `user:{id}`).
    pub channel: String,
    /// The segment as JSON text: `{"roles": [...], "cities": [...]}` (empty lists: everyone).
    pub audience: String,
    pub title: String,
    pub body: String,
    /// `draft`, `sending`, `sent` or `cancelled`.
    pub status: String,
    pub sent_at: Option<NaiveDateTime>,
    pub sent_count: i32,
    pub created_by: Option<i64>,
    pub version: i64,
    pub created_at: NaiveDateTime,
}

pub async fn insert_campaign(
    conn: &mut Conn,
    name: &str,
    audience: &str,
    title: &str,
    body: &str,
    created_by: i64,
) -> QueryResult<Campaign> {
    let now = super::now();
    on_conn!(conn, c => diesel::insert_into(campaigns::table)
        .values((
            campaigns::name.eq(name),
            campaigns::channel.eq("in_app"),
            campaigns::audience.eq(audience),
            campaigns::title.eq(title),
            campaigns::body.eq(body),
            campaigns::created_by.eq(created_by),
            campaigns::created_at.eq(now),
            campaigns::updated_at.eq(now),
        ))
        .returning(Campaign::as_returning())
        .get_result(c)
        .await)
}

pub async fn list_campaigns(conn: &mut Conn, limit: i64, offset: i64) -> QueryResult<(Vec<Campaign>, i64)> {
    on_conn!(conn, c => {
        let total = campaigns::table.count().get_result(c).await?;
        let rows = campaigns::table
            .order(campaigns::id.desc())
            .limit(limit)
            .offset(offset)
            .select(Campaign::as_select())
            .load(c)
            .await?;
        Ok((rows, total))
    })
}

pub async fn find_campaign(conn: &mut Conn, id: i64) -> QueryResult<Option<Campaign>> {
    on_conn!(conn, c => campaigns::table.find(id).select(Campaign::as_select()).first(c).await.optional())
}

/// Sends a draft campaign in one transaction: the campaign is claimed (`draft` → `sent`, a
/// conditional write, so it is sent once however many sends race on any node), its audience is read
/// — active users with one of `roles` (any when empty) and an address in one of `cities` (any when
/// empty), lowest id first, at most `limit` — and every notification is written, or none is. `None`
/// if the campaign is not a draft (any more).
pub async fn send_campaign(
    conn: &mut Conn,
    id: i64,
    roles: &[String],
    cities: &[String],
    limit: i64,
) -> QueryResult<Option<(Campaign, Vec<Notification>)>> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        let claimed = diesel::update(campaigns::table.filter(campaigns::id.eq(id).and(campaigns::status.eq("draft"))))
            .set((
                campaigns::status.eq("sending"),
                campaigns::version.eq(campaigns::version + 1),
                campaigns::updated_at.eq(now),
            ))
            .returning(Campaign::as_returning())
            .get_result(c)
            .await
            .optional()?;
        let Some(campaign) = claimed else {
            return Ok(None);
        };
        let mut query = users::table.filter(users::is_active.eq(true)).into_boxed();
        if !roles.is_empty() {
            query = query.filter(users::role.eq_any(roles.to_vec()));
        }
        if !cities.is_empty() {
            let in_cities = addresses::table
                .filter(addresses::city.eq_any(cities.to_vec()))
                .select(addresses::user_id);
            query = query.filter(users::id.eq_any(in_cities));
        }
        let recipients: Vec<i64> = query.order(users::id.asc()).limit(limit).select(users::id).load(c).await?;
        let data = serde_json::json!({"campaign_id": campaign.id}).to_string();
        let mut written = Vec::with_capacity(recipients.len());
        for user_id in recipients {
            written.push(
                diesel::insert_into(notifications::table)
                    .values((
                        notifications::user_id.eq(user_id),
                        notifications::kind.eq("campaign"),
                        notifications::title.eq(&campaign.title),
                        notifications::body.eq(&campaign.body),
                        notifications::data.eq(&data),
                        notifications::campaign_id.eq(campaign.id),
                        notifications::created_at.eq(now),
                    ))
                    .returning(Notification::as_returning())
                    .get_result(c)
                    .await?,
            );
        }
        let sent = i32::try_from(written.len()).unwrap_or(i32::MAX);
        let campaign = diesel::update(campaigns::table.find(campaign.id))
            .set((
                campaigns::status.eq("sent"),
                campaigns::sent_at.eq(now),
                campaigns::sent_count.eq(sent),
                campaigns::version.eq(campaigns::version + 1),
                campaigns::updated_at.eq(now),
            ))
            .returning(Campaign::as_returning())
            .get_result(c)
            .await?;
        Ok(Some((campaign, written)))
    }).await)
}
