//! The actors' `Store` port on the database: live entities are read from and written to their own
//! tables (`ambulance_requests`, and `orders` for their delivery's offer cascade), every transition
//! appended to `entity_transitions` in the same transaction, with the row's `version` as the optimistic
//! lock and the timeline's unique command id as the replay guard. Offers of a job to a unit are rows of
//! `dispatch_offers` keyed by the job's kind, whatever the kind.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use onemedi_actors::{
    dispatch::Priority,
    ids::{AmbulanceRequestId, OrderId, UnitId},
    machines::{Agent, AmbulanceStatus, EntityKey, EntityState, OrderStatus},
    ports::{AppendOutcome, BoxFuture, Store, StoreError, StoredEntity, TransitionRecord},
};

use super::{
    Conn, Db, Retryable,
    emergency::{ENTITY, NewTransition},
    schema::{ambulance_requests as ar, dispatch_offers, entity_transitions, hospitals, orders, units},
};
use crate::{db::prepared::PreparedExt, on_conn};

/// The database behind the entity actors.
#[derive(Clone)]
pub struct SqlStore {
    db: Db,
}

impl SqlStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// The ARP category's urgency (1 = life-threatening).
pub fn priority_of(category: i32) -> Priority {
    match category {
        1 => Priority::Category1,
        2 => Priority::Category2,
        3 => Priority::Category3,
        _ => Priority::Category4,
    }
}

/// The state machine's view of a stored request.
pub fn ambulance_status(status: &str, unit: Option<i64>) -> Option<AmbulanceStatus> {
    use AmbulanceStatus as S;
    let with_unit = |make: fn(UnitId) -> AmbulanceStatus| unit.map(|u| make(UnitId(u)));
    match status {
        "requested" => Some(S::Requested),
        "offered" => with_unit(S::Offered),
        "queued" => Some(S::Queued),
        "assigned" => with_unit(S::Assigned),
        "en_route" => with_unit(S::EnRoute),
        "on_scene" => with_unit(S::OnScene),
        "transporting" => with_unit(S::Transporting),
        "at_destination" => with_unit(S::AtDestination),
        "handed_over" => with_unit(S::HandedOver),
        "closed" => Some(S::Closed),
        "cancelled" => Some(S::Cancelled),
        "no_unit_available" => Some(S::NoUnitAvailable),
        "escalated" => Some(S::Escalated),
        _ => None,
    }
}

/// The unit status that follows a request's state, for the states that move the unit.
fn unit_status_for(state: &AmbulanceStatus) -> Option<&'static str> {
    match state {
        AmbulanceStatus::Assigned(_) => Some("assigned"),
        AmbulanceStatus::EnRoute(_) => Some("en_route"),
        AmbulanceStatus::OnScene(_) => Some("on_scene"),
        AmbulanceStatus::Transporting(_) => Some("transporting"),
        AmbulanceStatus::AtDestination(_) | AmbulanceStatus::HandedOver(_) => Some("at_destination"),
        _ => None,
    }
}

fn naive(at: DateTime<Utc>) -> NaiveDateTime {
    let at = at.naive_utc();
    chrono::DurationRound::duration_trunc(at, chrono::TimeDelta::microseconds(1)).unwrap_or(at)
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    #[error("duplicate command")]
    Duplicate,
    #[error("stale version")]
    Stale,
    /// The unit holds another job's open offer (maybe made by another node): nothing was written.
    #[error("unit {0} holds another open offer")]
    UnitBusy(i64),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl Retryable for AppendError {
    fn db_error(&self) -> Option<&diesel::result::Error> {
        match self {
            Self::Db(error) => Some(error),
            _ => None,
        }
    }
}

/// What a transition to `to` at `at` writes to the request's columns. Each milestone time is `Some(at)`
/// when this transition reaches it; the write keeps a time already set (`COALESCE(column, value)`), so a
/// time is set once and never moved, without reading the row first.
struct Changes {
    status: &'static str,
    assigned_unit_id: Option<i64>,
    /// Added to `escalation_level`.
    escalation_step: i32,
    notified_at: Option<NaiveDateTime>,
    en_route_at: Option<NaiveDateTime>,
    on_scene_at: Option<NaiveDateTime>,
    transporting_at: Option<NaiveDateTime>,
    at_destination_at: Option<NaiveDateTime>,
    handed_over_at: Option<NaiveDateTime>,
    back_in_service_at: Option<NaiveDateTime>,
    closed_at: Option<NaiveDateTime>,
    cancelled_at: Option<NaiveDateTime>,
}

fn changes(from: &AmbulanceStatus, to: &AmbulanceStatus, at: NaiveDateTime) -> Changes {
    use AmbulanceStatus as S;
    let when = |reached: bool| reached.then_some(at);
    Changes {
        status: to.name(),
        // The unit offered or assigned; cleared when the request goes back to searching or is called off,
        // kept on closed requests as the record of who served them.
        assigned_unit_id: match to {
            S::Requested | S::Cancelled | S::NoUnitAvailable | S::Escalated => None,
            S::Closed => from.unit().map(|u| u.0),
            other => other.unit().map(|u| u.0),
        },
        escalation_step: i32::from(matches!(to, S::Escalated)),
        notified_at: when(matches!(to, S::Assigned(_))),
        en_route_at: when(matches!(to, S::EnRoute(_))),
        on_scene_at: when(matches!(to, S::OnScene(_))),
        transporting_at: when(matches!(to, S::Transporting(_))),
        at_destination_at: when(matches!(to, S::AtDestination(_))),
        handed_over_at: when(matches!(to, S::HandedOver(_))),
        back_in_service_at: when(matches!(to, S::Closed)),
        closed_at: when(matches!(to, S::Closed)),
        cancelled_at: when(matches!(to, S::Cancelled)),
    }
}

diesel::define_sql_function! {
    /// SQL's `COALESCE` of two nullable timestamps: the first that is set.
    fn coalesce(
        x: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
        y: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Timestamp>;
}

/// The priority of an order's delivery: below every emergency, with the routine (longer) offer timeout.
pub const DELIVERY_PRIORITY: Priority = Priority::Routine;

/// The order machine's view of a stored order: `packed` splits by its rider and its open offer.
pub fn order_status(status: &str, rider: Option<i64>, offered_to: Option<i64>) -> Option<OrderStatus> {
    use OrderStatus as S;
    Some(match (status, rider, offered_to) {
        ("pending", ..) => S::Pending,
        ("confirmed", ..) => S::Confirmed,
        ("packed", Some(rider), _) => S::RiderAssigned(UnitId(rider)),
        ("packed", None, Some(unit)) => S::RiderOffered(UnitId(unit)),
        ("packed", None, None) => S::Packed,
        ("shipped", ..) => S::Shipped,
        ("out_for_delivery", Some(rider), _) => S::OutForDelivery(UnitId(rider)),
        ("delivered", ..) => S::Delivered,
        ("cancelled", ..) => S::Cancelled,
        _ => return None,
    })
}

impl SqlStore {
    async fn load(&self, key: EntityKey) -> Result<Option<StoredEntity>, StoreError> {
        if let EntityKey::Order(id) = key {
            return self.load_order(key, id).await;
        }
        let EntityKey::AmbulanceRequest(id) = key else {
            return Err(StoreError::Corrupt {
                key,
                reason: "this kind of entity is not kept in the database yet".to_owned(),
            });
        };
        let mut conn = self.db.read().await.map_err(unavailable)?;
        let row = on_conn!(&mut conn, c => ar::table
            .find(id.0)
            .select((ar::status, ar::assigned_unit_id, ar::version))
            .first::<(String, Option<i64>, i64)>(c)
            .await)
        .optional()
        .map_err(unavailable)?;
        let Some((status, unit, version)) = row else {
            return Ok(None);
        };
        let state = ambulance_status(&status, unit).ok_or_else(|| StoreError::Corrupt {
            key,
            reason: format!("status `{status}` with unit {unit:?}"),
        })?;
        Ok(Some(StoredEntity {
            key,
            state: EntityState::AmbulanceRequest(state),
            version: u64::try_from(version).unwrap_or(0),
        }))
    }

    async fn load_order(&self, key: EntityKey, id: OrderId) -> Result<Option<StoredEntity>, StoreError> {
        let mut conn = self.db.read().await.map_err(unavailable)?;
        let now = super::now();
        let row = on_conn!(&mut conn, c => orders::table
            .find(id.0)
            .select((orders::status, orders::rider_unit_id, orders::version))
            .first::<(String, Option<i64>, i64)>(c)
            .await)
        .optional()
        .map_err(unavailable)?;
        let offered = match &row {
            Some((status, None, _)) if status == "packed" => on_conn!(&mut conn, c => dispatch_offers::table
                .filter(
                    dispatch_offers::request_kind
                        .eq(super::orders::ENTITY)
                        .and(dispatch_offers::request_id.eq(id.0))
                        .and(dispatch_offers::status.eq("offered"))
                        .and(dispatch_offers::expires_at.gt(now)),
                )
                .select(dispatch_offers::unit_id)
                .first::<i64>(c)
                .await)
            .optional()
            .map_err(unavailable)?,
            _ => None,
        };
        let row = row.map(|r| (r, offered));
        let Some(((status, rider, version), offered)) = row else {
            return Ok(None);
        };
        let state = order_status(&status, rider, offered).ok_or_else(|| StoreError::Corrupt {
            key,
            reason: format!("order status `{status}` with rider {rider:?}"),
        })?;
        Ok(Some(StoredEntity {
            key,
            state: EntityState::Order(state),
            version: u64::try_from(version).unwrap_or(0),
        }))
    }

    /// Records one step of an order's delivery cascade (offer, lapse, assignment) or a move of its
    /// machine, under the order's version, with the offer rows it opens or closes.
    async fn append_order(&self, record: TransitionRecord) -> Result<AppendOutcome, StoreError> {
        let (EntityKey::Order(OrderId(id)), EntityState::Order(from), EntityState::Order(to)) =
            (record.key, &record.from, &record.to)
        else {
            return Err(StoreError::Corrupt {
                key: record.key,
                reason: "an order transition between states of another kind".to_owned(),
            });
        };
        let input = OrderAppend {
            id,
            from: *from,
            to: *to,
            at: naive(record.at),
            expected: i64::try_from(record.expected_version).map_err(unavailable)?,
            command: record.command_id.to_string(),
            event: record.event.clone(),
            agent: record.agent,
            note: record.note.clone(),
        };
        let mut conn = self.db.write().await.map_err(unavailable)?;
        let mut tries = 0;
        let outcome = loop {
            tries += 1;
            match append_order_once(&mut conn, input.clone()).await {
                Err(error) if tries < 4 && error.is_retryable() => {
                    tracing::warn!(error = %error, tries, "transition re-run after a serialization failure");
                    tokio::time::sleep(std::time::Duration::from_millis(15) * tries).await;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(version) => Ok(AppendOutcome::Applied {
                version: u64::try_from(version).unwrap_or(0),
            }),
            Err(AppendError::Duplicate) => Ok(AppendOutcome::Duplicate),
            Err(AppendError::Stale) => Ok(AppendOutcome::Stale),
            Err(AppendError::UnitBusy(unit)) => Ok(AppendOutcome::UnitBusy { unit: UnitId(unit) }),
            Err(AppendError::Db(error)) => Err(unavailable(error)),
        }
    }

    async fn append(&self, record: TransitionRecord) -> Result<AppendOutcome, StoreError> {
        if matches!(record.key, EntityKey::Order(_)) {
            return self.append_order(record).await;
        }
        let (
            EntityKey::AmbulanceRequest(AmbulanceRequestId(id)),
            EntityState::AmbulanceRequest(from),
            EntityState::AmbulanceRequest(to),
        ) = (record.key, &record.from, &record.to)
        else {
            return Err(StoreError::Corrupt {
                key: record.key,
                reason: "this kind of entity is not kept in the database yet".to_owned(),
            });
        };
        let (from, to) = (*from, *to);
        let at = naive(record.at);
        let expected = i64::try_from(record.expected_version).map_err(unavailable)?;
        let command = record.command_id.to_string();
        let (actor_user, actor_unit) = match record.agent {
            Agent::System => (None, None),
            Agent::User(user) => (Some(user.0), None),
            Agent::Unit(unit) => (None, Some(unit.0)),
        };
        let input = AppendInput {
            id,
            from,
            to,
            at,
            expected,
            command,
            event: record.event.clone(),
            actor_user,
            actor_unit,
            note: record.note.clone(),
        };
        let mut conn = self.db.write().await.map_err(unavailable)?;
        let mut tries = 0;
        let outcome = loop {
            tries += 1;
            match append_once(&mut conn, input.clone()).await {
                Err(error) if tries < 4 && error.is_retryable() => {
                    tracing::warn!(error = %error, tries, "transition re-run after a serialization failure");
                    tokio::time::sleep(std::time::Duration::from_millis(15) * tries).await;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(version) => Ok(AppendOutcome::Applied {
                version: u64::try_from(version).unwrap_or(0),
            }),
            Err(AppendError::Duplicate) => Ok(AppendOutcome::Duplicate),
            Err(AppendError::Stale) => Ok(AppendOutcome::Stale),
            Err(AppendError::UnitBusy(unit)) => Ok(AppendOutcome::UnitBusy { unit: UnitId(unit) }),
            Err(AppendError::Db(error)) => Err(unavailable(error)),
        }
    }
}

/// One transition to write, owned so the write's future is `Send` for the actors.
#[derive(Debug, Clone)]
struct AppendInput {
    id: i64,
    from: AmbulanceStatus,
    to: AmbulanceStatus,
    at: NaiveDateTime,
    expected: i64,
    command: String,
    event: String,
    actor_user: Option<i64>,
    actor_unit: Option<i64>,
    /// The command's note: the timeline's reason.
    note: Option<String>,
}

/// The timeline row of a transition; a replayed command id fails it with a unique violation.
macro_rules! transition_row {
    ($input:expr) => {
        diesel::insert_into(entity_transitions::table)
            .values(NewTransition {
                entity_type: ENTITY,
                entity_id: $input.id,
                event: &$input.event,
                from_status: Some($input.from.name()),
                to_status: $input.to.name(),
                actor_user_id: $input.actor_user,
                actor_unit_id: $input.actor_unit,
                reason: $input.note.as_deref(),
                command_id: Some(&$input.command),
                at: $input.at,
                details: None,
            })
            .prepared()
    };
}

/// The request's columns after the transition, written only if its version is still the expected one;
/// returns the new version and what the side effects need of the row.
macro_rules! request_update {
    ($input:expr, $new:expr) => {
        diesel::update(ar::table.find($input.id).filter(ar::version.eq($input.expected)))
            .set((
                ar::status.eq($new.status),
                ar::assigned_unit_id.eq($new.assigned_unit_id),
                ar::escalation_level.eq(ar::escalation_level + $new.escalation_step),
                ar::notified_at.eq(coalesce(ar::notified_at, $new.notified_at)),
                ar::en_route_at.eq(coalesce(ar::en_route_at, $new.en_route_at)),
                ar::on_scene_at.eq(coalesce(ar::on_scene_at, $new.on_scene_at)),
                ar::transporting_at.eq(coalesce(ar::transporting_at, $new.transporting_at)),
                ar::at_destination_at.eq(coalesce(ar::at_destination_at, $new.at_destination_at)),
                ar::handed_over_at.eq(coalesce(ar::handed_over_at, $new.handed_over_at)),
                ar::back_in_service_at.eq(coalesce(ar::back_in_service_at, $new.back_in_service_at)),
                ar::closed_at.eq(coalesce(ar::closed_at, $new.closed_at)),
                ar::cancelled_at.eq(coalesce(ar::cancelled_at, $new.cancelled_at)),
                ar::version.eq(ar::version + 1),
                ar::updated_at.eq($input.at),
            ))
            .returning((ar::version, ar::category, ar::destination_hospital_id))
            .prepared()
    };
}

/// What the timeline insert and the versioned update came to: the new version and the touched row, or
/// why nothing may be written.
fn settle_append(
    inserted: QueryResult<usize>,
    updated: QueryResult<(i64, i32, Option<i64>)>,
    id: i64,
) -> Result<(i64, Touched), AppendError> {
    match inserted {
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            return Err(AppendError::Duplicate);
        }
        other => other?,
    };
    let (version, category, destination_hospital_id) = updated.optional()?.ok_or(AppendError::Stale)?;
    Ok((
        version,
        Touched {
            id,
            category,
            destination_hospital_id,
        },
    ))
}

/// Appends the timeline row (a replayed command id fails here), checks and bumps the version, writes
/// the request's columns and the side effects, in one transaction. Returns the new version.
///
/// On PostgreSQL the timeline insert and the versioned update are pipelined: both are sent before
/// either answer is read, one round trip for the two. If the insert fails (a replay), the update fails
/// with it (the transaction is aborted) and the whole transaction rolls back, as when run in turn.
async fn append_once(conn: &mut Conn, input: AppendInput) -> Result<i64, AppendError> {
    let new = changes(&input.from, &input.to, input.at);
    let (from, to, at) = (input.from, input.to, input.at);
    match conn {
        Conn::Pg(pooled) => {
            let c: &mut diesel_async::AsyncPgConnection = pooled;
            c.transaction(async move |c| {
                let (mut first, mut second) = (&*c, &*c);
                let inserted = transition_row!(input).execute(&mut first);
                let updated = request_update!(input, new).get_result::<(i64, i32, Option<i64>)>(&mut second);
                let (inserted, updated) = futures_util::future::join(inserted, updated).await;
                let (version, touched) = settle_append(inserted, updated, input.id)?;
                SideEffects::run(c, touched, from, to, at).await?;
                Ok(version)
            })
            .await
        }
        Conn::Sqlite(pooled) => {
            let c: &mut super::SqliteConn = pooled;
            c.transaction(async move |c| {
                let inserted = transition_row!(input).execute(c).await;
                let updated = match inserted {
                    Ok(_) => {
                        request_update!(input, new)
                            .get_result::<(i64, i32, Option<i64>)>(c)
                            .await
                    }
                    // Not run: the insert's error decides.
                    Err(_) => Err(diesel::result::Error::NotFound),
                };
                let (version, touched) = settle_append(inserted, updated, input.id)?;
                SideEffects::run(c, touched, from, to, at).await?;
                Ok(version)
            })
            .await
        }
    }
}

/// One order transition to write (owned, so the write's future is `Send`).
#[derive(Debug, Clone)]
struct OrderAppend {
    id: i64,
    from: OrderStatus,
    to: OrderStatus,
    at: NaiveDateTime,
    expected: i64,
    command: String,
    event: String,
    agent: Agent,
    note: Option<String>,
}

/// The order's timeline row, version check and columns, and its offer rows, in one transaction.
async fn append_order_once(conn: &mut Conn, input: OrderAppend) -> Result<i64, AppendError> {
    use OrderStatus as S;
    on_conn!(conn, c => c.transaction(async move |c| {
        let OrderAppend { id, from, to, at, expected, command, event, agent, note } = input;
        let (actor_user, actor_unit) = match agent {
            Agent::System => (None, None),
            Agent::User(user) => (Some(user.0), None),
            Agent::Unit(unit) => (None, Some(unit.0)),
        };
        let offered_to = match to {
            S::RiderOffered(unit) => Some(unit.0),
            _ => None,
        };
        let details = offered_to.map(|unit| format!(r#"{{"unit_id":{unit}}}"#));
        let inserted = diesel::insert_into(entity_transitions::table)
            .values(NewTransition {
                entity_type: super::orders::ENTITY,
                entity_id: id,
                event: &event,
                from_status: Some(from.name()),
                to_status: to.name(),
                actor_user_id: actor_user,
                actor_unit_id: actor_unit,
                reason: note.as_deref(),
                command_id: Some(&command),
                at,
                details,
            })
            .prepared()
            .execute(c)
            .await;
        match inserted {
            Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(AppendError::Duplicate);
            }
            other => other?,
        };
        let rider = match to {
            S::RiderAssigned(unit) | S::OutForDelivery(unit) => Some(unit.0),
            _ => None,
        };
        let version = diesel::update(orders::table.find(id).filter(orders::version.eq(expected)))
            .set((
                orders::status.eq(to.name()),
                orders::rider_unit_id.eq(rider),
                orders::version.eq(orders::version + 1),
                orders::updated_at.eq(at),
            ))
            .returning(orders::version)
            .prepared()
            .get_result::<i64>(c)
            .await
            .optional()?
            .ok_or(AppendError::Stale)?;
        let kind = super::orders::ENTITY;
        match offered_to {
            Some(unit) => {
                let timeout = chrono::TimeDelta::from_std(DELIVERY_PRIORITY.offer_timeout())
                    .unwrap_or(chrono::TimeDelta::zero());
                let expires = at.checked_add_signed(timeout).unwrap_or(at);
                OfferRows::open(c, kind, id, unit, at, expires).await?;
            }
            None => OfferRows::close_all(c, kind, id, at).await?,
        }
        Ok(version)
    }).await)
}

/// The open offers of a job (any kind) to units: one `offered` row at a time.
pub(crate) struct OfferRows;

/// The jobs whose offers hold their unit exclusively (the partial unique index
/// `dispatch_offers_one_open_per_unit`); a lab collector takes several collections per window.
const EXCLUSIVE_OFFER_KINDS: [&str; 2] = ["ambulance_request", "order"];
const ONE_OPEN_OFFER_INDEX: &str = "dispatch_offers_one_open_per_unit";

/// True when `error` is a violation of that index: PostgreSQL names the index, SQLite names the one
/// column (the table's other unique key names three).
fn is_one_open_offer_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(ONE_OPEN_OFFER_INDEX)
                || info.message().ends_with(": dispatch_offers.unit_id")
    )
}

pub(crate) trait OfferRowQueries<C> {
    /// Opens (or re-opens) the offer of job `(kind, job)` to `unit`, closing the job's other open one.
    /// [`AppendError::UnitBusy`] when the unit holds another job's unexpired offer: a unit has one open
    /// offer at a time, across nodes (the partial unique index refuses the second; its error aborts the
    /// transaction, which writes nothing then).
    fn open(
        c: &mut C,
        kind: &'static str,
        job: i64,
        unit: i64,
        at: NaiveDateTime,
        expires: NaiveDateTime,
    ) -> impl Future<Output = Result<(), AppendError>> + Send;

    /// Closes every open offer of the job (it lapsed, or the job moved on).
    fn close_all(
        c: &mut C,
        kind: &'static str,
        job: i64,
        at: NaiveDateTime,
    ) -> impl Future<Output = Result<(), diesel::result::Error>> + Send;
}

macro_rules! offer_row_queries {
    ($conn:ty) => {
        impl OfferRowQueries<$conn> for OfferRows {
            async fn open(
                c: &mut $conn,
                kind: &'static str,
                job: i64,
                unit: i64,
                at: NaiveDateTime,
                expires: NaiveDateTime,
            ) -> Result<(), AppendError> {
                // An offer to this unit that lapsed unanswered (its node may have died) is over.
                diesel::update(
                    dispatch_offers::table.filter(
                        dispatch_offers::unit_id
                            .eq(unit)
                            .and(dispatch_offers::status.eq("offered"))
                            .and(dispatch_offers::request_kind.eq_any(EXCLUSIVE_OFFER_KINDS))
                            .and(dispatch_offers::expires_at.le(at)),
                    ),
                )
                .set((
                    dispatch_offers::status.eq("expired"),
                    dispatch_offers::responded_at.eq(at),
                ))
                .prepared()
                .execute(c)
                .await?;
                // An earlier offer of this job to another unit is over (declined or lapsed).
                diesel::update(
                    dispatch_offers::table.filter(
                        dispatch_offers::request_kind
                            .eq(kind)
                            .and(dispatch_offers::request_id.eq(job))
                            .and(dispatch_offers::status.eq("offered"))
                            .and(dispatch_offers::unit_id.ne(unit)),
                    ),
                )
                .set((
                    dispatch_offers::status.eq("expired"),
                    dispatch_offers::responded_at.eq(at),
                ))
                .prepared()
                .execute(c)
                .await?;
                diesel::insert_into(dispatch_offers::table)
                    .values((
                        dispatch_offers::request_kind.eq(kind),
                        dispatch_offers::request_id.eq(job),
                        dispatch_offers::unit_id.eq(unit),
                        dispatch_offers::status.eq("offered"),
                        dispatch_offers::offered_at.eq(at),
                        dispatch_offers::expires_at.eq(expires),
                    ))
                    .on_conflict((
                        dispatch_offers::request_kind,
                        dispatch_offers::request_id,
                        dispatch_offers::unit_id,
                    ))
                    .do_update()
                    .set((
                        dispatch_offers::status.eq("offered"),
                        dispatch_offers::offered_at.eq(at),
                        dispatch_offers::expires_at.eq(expires),
                        dispatch_offers::responded_at.eq(None::<NaiveDateTime>),
                        dispatch_offers::version.eq(dispatch_offers::version + 1),
                    ))
                    .prepared()
                    .execute(c)
                    .await
                    .map_err(|error| {
                        // The unit holds another job's open offer (this node's or another's).
                        if is_one_open_offer_violation(&error) {
                            AppendError::UnitBusy(unit)
                        } else {
                            AppendError::Db(error)
                        }
                    })?;
                Ok(())
            }

            async fn close_all(
                c: &mut $conn,
                kind: &'static str,
                job: i64,
                at: NaiveDateTime,
            ) -> Result<(), diesel::result::Error> {
                diesel::update(
                    dispatch_offers::table.filter(
                        dispatch_offers::request_kind
                            .eq(kind)
                            .and(dispatch_offers::request_id.eq(job))
                            .and(dispatch_offers::status.eq("offered")),
                    ),
                )
                .set((
                    dispatch_offers::status.eq("expired"),
                    dispatch_offers::responded_at.eq(at),
                ))
                .prepared()
                .execute(c)
                .await?;
                Ok(())
            }
        }
    };
}

offer_row_queries!(diesel_async::AsyncPgConnection);
offer_row_queries!(super::SqliteConn);

/// What a transition does to other rows, inside its transaction: offers opened and closed, the unit's
/// status following the job, the unit released when the job ends, a bed taken on arrival. Written once,
/// implemented per backend by the macro below.
struct SideEffects;

/// What the side effects need of the request row.
#[derive(Debug, Clone, Copy)]
struct Touched {
    id: i64,
    category: i32,
    destination_hospital_id: Option<i64>,
}

trait SideEffectQueries<C> {
    fn run(
        c: &mut C,
        request: Touched,
        from: AmbulanceStatus,
        to: AmbulanceStatus,
        at: NaiveDateTime,
    ) -> impl Future<Output = Result<(), AppendError>> + Send;
}

macro_rules! side_effect_queries {
    ($conn:ty) => {
        impl SideEffectQueries<$conn> for SideEffects {
            async fn run(
                c: &mut $conn,
                touched: Touched,
                from: AmbulanceStatus,
                to: AmbulanceStatus,
                at: NaiveDateTime,
            ) -> Result<(), AppendError> {
                use AmbulanceStatus as S;
                let request = touched.id;
                if let S::Offered(unit) = to {
                    let expires = chrono::TimeDelta::from_std(priority_of(touched.category).offer_timeout())
                        .ok()
                        .and_then(|t| at.checked_add_signed(t))
                        .unwrap_or(at);
                    OfferRows::open(c, ENTITY, request, unit.0, at, expires).await?;
                    return Ok(());
                }
                if matches!(
                    to,
                    S::Requested | S::Queued | S::Cancelled | S::NoUnitAvailable | S::Escalated
                ) {
                    OfferRows::close_all(c, ENTITY, request, at).await?;
                }
                let Some(unit) = from.unit().or(to.unit()) else {
                    return Ok(());
                };
                let ours = units::table.find(unit.0).filter(
                    units::request_kind
                        .eq(ENTITY)
                        .and(units::request_id.eq(request)),
                );
                if let Some(status) = unit_status_for(&to) {
                    diesel::update(ours)
                        .set((
                            units::status.eq(status),
                            units::version.eq(units::version + 1),
                            units::updated_at.eq(at),
                        ))
                        .prepared()
                        .execute(c)
                        .await?;
                } else if matches!(to, S::Closed | S::Cancelled) {
                    diesel::update(ours)
                        .set((
                            units::status.eq("available"),
                            units::request_kind.eq(None::<String>),
                            units::request_id.eq(None::<i64>),
                            units::version.eq(units::version + 1),
                            units::updated_at.eq(at),
                        ))
                        .prepared()
                        .execute(c)
                        .await?;
                }
                if matches!(to, S::AtDestination(_))
                    && let Some(hospital) = touched.destination_hospital_id
                {
                    // One emergency bed is taken on arrival, if one is left (the count never goes negative).
                    diesel::update(
                        hospitals::table
                            .find(hospital)
                            .filter(hospitals::beds_emergency_available.gt(0)),
                    )
                    .set((
                        hospitals::beds_emergency_available.eq(hospitals::beds_emergency_available - 1),
                        hospitals::version.eq(hospitals::version + 1),
                        hospitals::updated_at.eq(at),
                    ))
                    .prepared()
                    .execute(c)
                    .await?;
                }
                Ok(())
            }
        }
    };
}

side_effect_queries!(diesel_async::AsyncPgConnection);
side_effect_queries!(super::SqliteConn);

impl Store for SqlStore {
    fn load_entity(&self, key: EntityKey) -> BoxFuture<'_, Result<Option<StoredEntity>, StoreError>> {
        Box::pin(self.load(key))
    }

    fn append_transition(
        &self,
        record: TransitionRecord,
    ) -> BoxFuture<'_, Result<AppendOutcome, StoreError>> {
        Box::pin(self.append(record))
    }

    /// `UPDATE units SET status='assigned', request_kind, request_id WHERE id=$u AND (status='available'
    /// OR it is already this claimant's)`.
    fn claim_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let kind = claimant.kind().as_str();
            let request = claimant.raw_id();
            let now = super::now();
            let mut conn = self.db.write().await.map_err(unavailable)?;
            let claimed = on_conn!(&mut conn, c => diesel::update(units::table.find(unit.0).filter(
                    units::status.eq("available").or(units::request_kind.eq(kind).and(units::request_id.eq(request))),
                ))
                .set((
                    units::status.eq("assigned"),
                    units::request_kind.eq(kind),
                    units::request_id.eq(request),
                    units::version.eq(units::version + 1),
                    units::updated_at.eq(now),
                ))
                .prepared()
                .execute(c)
                .await)
            .map_err(unavailable)?;
            Ok(claimed == 1)
        })
    }

    fn release_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let kind = claimant.kind().as_str();
            let request = claimant.raw_id();
            let now = super::now();
            let mut conn = self.db.write().await.map_err(unavailable)?;
            let released = on_conn!(&mut conn, c => diesel::update(units::table.find(unit.0).filter(
                    units::request_kind.eq(kind).and(units::request_id.eq(request)),
                ))
                .set((
                    units::status.eq("available"),
                    units::request_kind.eq(None::<String>),
                    units::request_id.eq(None::<i64>),
                    units::version.eq(units::version + 1),
                    units::updated_at.eq(now),
                ))
                .prepared()
                .execute(c)
                .await)
            .map_err(unavailable)?;
            Ok(released == 1)
        })
    }
}
