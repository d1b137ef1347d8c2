//! Dispatch leases: which node works a waiting job (an ambulance request being offered or queued, a
//! packed order looking for a rider). The owner renews its leases every second; a job whose lease
//! lapsed (its node died or stalled) is adopted by another node with one conditional write, so exactly
//! one node runs each job's cascade and no call waits on a dead node for long.

use std::time::Duration;

use onemedi_actors::{
    dispatch::{ActiveJobs, CancelDispatch, DispatchPhase, DispatchStatus},
    machines::EntityKey,
};

use crate::{db::emergency, state::AppState};

/// How often a node renews its leases and looks for lapsed ones.
pub const LEASE_TICK: Duration = Duration::from_secs(1);
/// Lease of a category 1 or 2 call: adopted within this plus one tick (≤ 4 s) after its node dies.
pub const URGENT_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(3);
/// Lease of a category 3 or 4 call or a delivery: adopted within this plus one tick (≤ 11 s); long
/// enough that a node stalled for a few seconds does not lose them.
pub const ROUTINE_LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Whether this node's dispatcher is working `job`.
pub async fn running(state: &AppState, job: EntityKey) -> bool {
    state
        .emergency
        .dispatcher
        .send(DispatchStatus(job))
        .await
        .ok()
        .flatten()
        .is_some_and(|phase| !matches!(phase, DispatchPhase::Done(_)))
}

/// One tick: renew the leases of every job this node works, stop working those another node took
/// over, then adopt requests whose lease lapsed.
pub async fn tick(state: &AppState) {
    renew(state).await;
    adopt_lapsed(state).await;
}

async fn renew(state: &AppState) {
    let Ok(jobs) = state.emergency.dispatcher.send(ActiveJobs).await else {
        return;
    };
    let requests: Vec<i64> = jobs
        .iter()
        .filter_map(|job| match job {
            EntityKey::AmbulanceRequest(id) => Some(id.0),
            _ => None,
        })
        .collect();
    let orders: Vec<i64> = jobs
        .iter()
        .filter_map(|job| match job {
            EntityKey::Order(id) => Some(id.0),
            _ => None,
        })
        .collect();
    if requests.is_empty() && orders.is_empty() {
        return;
    }
    let node = state.bus.node_id().to_owned();
    let now = crate::db::now();
    let renewed = async {
        let mut conn = state.db.write().await?;
        let requests_renewed = if requests.is_empty() {
            Vec::new()
        } else {
            emergency::renew_leases(
                &mut conn,
                &requests,
                &node,
                now,
                now + URGENT_LEASE,
                now + ROUTINE_LEASE,
            )
            .await?
        };
        let orders_renewed = if orders.is_empty() {
            Vec::new()
        } else {
            crate::db::orders::renew_leases(&mut conn, &orders, &node, now, now + ROUTINE_LEASE).await?
        };
        Ok::<_, crate::db::DbError>((requests_renewed, orders_renewed))
    };
    let (requests_renewed, orders_renewed) = match renewed.await {
        Ok(renewed) => renewed,
        Err(error) => {
            tracing::warn!(error = %error, "dispatch leases not renewed");
            return;
        }
    };
    // A job whose lease another node holds was adopted there while this node stalled: stop working it
    // here, so two nodes never both run its cascade for long.
    let lost = requests
        .iter()
        .filter(|id| !requests_renewed.contains(id))
        .map(|id| super::key(*id))
        .chain(
            orders
                .iter()
                .filter(|id| !orders_renewed.contains(id))
                .map(|id| super::order_key(*id)),
        );
    for job in lost {
        tracing::warn!(%job, "another node took over this job's dispatch; stopping here");
        state.emergency.dispatcher.do_send(CancelDispatch(job));
    }
}

async fn adopt_lapsed(state: &AppState) {
    let now = crate::db::now();
    let lapsed = async {
        let mut conn = state.db.read().await?;
        Ok::<_, crate::db::DbError>(emergency::lease_lapsed(&mut conn, now, 200).await?)
    };
    let candidates = match lapsed.await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(error = %error, "lease sweep skipped");
            return;
        }
    };
    let one_shot = state.settings.dispatch.policy == crate::config::DispatchPolicy::OneShot;
    for request in candidates {
        // The one-shot policy leaves a call nobody took to a human: only a lost cascade is restarted.
        if one_shot && !matches!(request.status.as_str(), "requested" | "offered") {
            continue;
        }
        let lease = if request.category <= 2 {
            URGENT_LEASE
        } else {
            ROUTINE_LEASE
        };
        let adopted = match state.db.write().await {
            Ok(mut conn) => {
                emergency::adopt(&mut conn, request.id, state.bus.node_id(), now, now + lease).await
            }
            Err(error) => {
                tracing::warn!(error = %error, "request not adopted");
                continue;
            }
        };
        match adopted {
            // This node's own cascade whose renewal came late: it keeps running.
            Ok(Some(row)) if running(state, super::key(row.id)).await => {}
            Ok(Some(row)) => {
                tracing::info!(request = row.id, status = %row.status, "adopted a request whose dispatch lease lapsed");
                state.emergency.dispatch(&row);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(error = %error, request = request.id, "request not adopted"),
        }
    }
}
