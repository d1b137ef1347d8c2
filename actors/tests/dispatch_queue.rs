//! The queue: a call nobody can take now waits, is re-solved on every change of supply (in priority
//! order, competing calls by the batch assignment), candidates are re-checked at each offer, and an
//! urgent call with no near free unit asks for a preemption.

#![expect(clippy::unwrap_used, reason = "the helpers fail the test loudly")]

mod support;

use std::time::Duration;

use onemedi_actors::{
    dispatch::{
        AnswerOutcome, ConsiderPreemption, Dispatch, DispatchPhase, DispatchStatus, OfferAnswer, Preempted,
        Priority, SupplyChanged,
    },
    fleet::{Capabilities, SetUnitStatus, UnitKind, UnitStatus, UpsertUnit},
    ids::{AmbulanceRequestId, UnitId},
    machines::{AmbulanceStatus, EntityKey, EntityState},
};
use support::{
    World,
    dispatch::{Node, ambulance, north_of_centre, offers, settle},
};

fn job(id: i64) -> EntityKey {
    EntityKey::AmbulanceRequest(AmbulanceRequestId(id))
}

fn call(id: i64, north_m: f64, priority: Priority, called_after_s: i64) -> Dispatch {
    Dispatch {
        job: job(id),
        kind: UnitKind::AmbulanceAls,
        point: north_of_centre(north_m),
        priority,
        required: Capabilities::NONE,
        fallback: None,
        called_at: support::t0() + chrono::TimeDelta::seconds(called_after_s),
    }
}

/// A world with ambulances at the given distances north of the centre, all busy on other work.
fn busy_fleet(distances_m: &[f64]) -> (World, Node) {
    let world = World::new();
    let units: Vec<_> = distances_m
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let mut unit = ambulance(i as i64 + 1, north_of_centre(d), world.now());
            unit.status = UnitStatus::Busy;
            unit
        })
        .collect();
    let node = Node::start(&world.ports(), &units);
    (world, node)
}

fn open_request(world: &World, id: i64) {
    world
        .store
        .inner
        .insert_entity(job(id), EntityState::AmbulanceRequest(AmbulanceStatus::Requested));
}

async fn free(node: &Node, unit: i64) {
    node.fleet
        .send(SetUnitStatus {
            unit: UnitId(unit),
            status: UnitStatus::Available,
        })
        .await
        .unwrap();
}

/// Lets the debounced re-solve fire and its offers go out.
async fn resolve_now(node: &Node) {
    node.dispatcher.send(SupplyChanged).await.unwrap();
    settle().await;
    tokio::time::advance(Duration::from_millis(50)).await;
    settle().await;
}

fn stored(world: &World, id: i64) -> EntityState {
    world.store.inner.entity(job(id)).unwrap().state
}

fn timeline_reasons(world: &World, id: i64) -> Vec<(String, Option<String>)> {
    world
        .store
        .inner
        .timeline(job(id))
        .iter()
        .map(|t| (t.to.name().to_owned(), t.note.clone()))
        .collect()
}

#[actix::test]
async fn a_call_nobody_can_take_waits_queued_and_is_offered_the_moment_a_unit_frees_up() {
    tokio::time::pause();
    let (world, node) = busy_fleet(&[500.0]);
    open_request(&world, 1);
    node.dispatcher
        .send(call(1, 0.0, Priority::Category2, 0))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    assert!(offers(&world.bus.published()).is_empty());
    assert_eq!(
        node.dispatcher.send(DispatchStatus(job(1))).await.unwrap(),
        Some(DispatchPhase::Queued)
    );
    // A unit is on duty (busy), so the call is queued, not "no unit available".
    assert_eq!(
        stored(&world, 1),
        EntityState::AmbulanceRequest(AmbulanceStatus::Queued)
    );

    free(&node, 1).await;
    resolve_now(&node).await;
    assert_eq!(offers(&world.bus.published()), vec![(job(1), UnitId(1))]);
    assert_eq!(
        stored(&world, 1),
        EntityState::AmbulanceRequest(AmbulanceStatus::Offered(UnitId(1)))
    );
    let answer = OfferAnswer {
        job: job(1),
        unit: UnitId(1),
        accepted: true,
    };
    assert_eq!(
        node.dispatcher.send(answer).await.unwrap(),
        AnswerOutcome::Assigned
    );
}

#[actix::test]
async fn competing_queued_calls_get_the_assignment_with_the_least_total_eta_and_the_timeline_says_how() {
    tokio::time::pause();
    // Call 1 (older) at 0 m and call 2 at 2 km; unit 1 at 1 km, unit 2 at 1.5 km south. Serving the
    // older call first with its nearest unit would cost 1 + 3.5 km; the batch finds 1.5 + 1 km.
    let (world, node) = busy_fleet(&[1_000.0, -1_500.0]);
    open_request(&world, 1);
    open_request(&world, 2);
    for dispatch in [
        call(1, 0.0, Priority::Category2, 0),
        call(2, 2_000.0, Priority::Category2, 5),
    ] {
        node.dispatcher.send(dispatch).await.unwrap().unwrap();
    }
    settle().await;
    assert!(offers(&world.bus.published()).is_empty());

    free(&node, 1).await;
    free(&node, 2).await;
    resolve_now(&node).await;
    let mut made = offers(&world.bus.published());
    made.sort_by_key(|(j, _)| j.raw_id());
    assert_eq!(made, vec![(job(1), UnitId(2)), (job(2), UnitId(1))]);
    for id in [1, 2] {
        let (to, note) = timeline_reasons(&world, id).pop().unwrap();
        assert_eq!(to, "offered");
        let note = note.unwrap();
        assert!(note.starts_with("batch exact: 2 calls x 2 units in "), "{note}");
    }
}

#[actix::test]
async fn a_category_1_call_is_served_before_an_older_category_4_call_when_one_unit_frees_up() {
    tokio::time::pause();
    let (world, node) = busy_fleet(&[500.0]);
    open_request(&world, 1);
    open_request(&world, 2);
    // The category 4 call is older and nearer.
    node.dispatcher
        .send(call(1, 100.0, Priority::Category4, 0))
        .await
        .unwrap()
        .unwrap();
    node.dispatcher
        .send(call(2, 3_000.0, Priority::Category1, 60))
        .await
        .unwrap()
        .unwrap();
    settle().await;

    free(&node, 1).await;
    resolve_now(&node).await;
    assert_eq!(offers(&world.bus.published()), vec![(job(2), UnitId(1))]);
    assert_eq!(
        stored(&world, 1),
        EntityState::AmbulanceRequest(AmbulanceStatus::Queued)
    );
}

#[actix::test]
async fn a_new_call_joins_the_waiting_calls_instead_of_jumping_the_queue() {
    tokio::time::pause();
    let (world, node) = busy_fleet(&[500.0]);
    open_request(&world, 1);
    open_request(&world, 2);
    node.dispatcher
        .send(call(1, 0.0, Priority::Category2, 0))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    // The unit frees up and a lower-priority call arrives before the queue is re-solved.
    free(&node, 1).await;
    node.dispatcher
        .send(call(2, 100.0, Priority::Category3, 30))
        .await
        .unwrap()
        .unwrap();
    resolve_now(&node).await;
    assert_eq!(offers(&world.bus.published()), vec![(job(1), UnitId(1))]);
}

#[actix::test]
async fn a_call_with_nobody_on_duty_is_retried_when_a_unit_comes_on_duty() {
    tokio::time::pause();
    let (world, node) = busy_fleet(&[]);
    open_request(&world, 1);
    node.dispatcher
        .send(call(1, 0.0, Priority::Category1, 0))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    assert_eq!(
        stored(&world, 1),
        EntityState::AmbulanceRequest(AmbulanceStatus::NoUnitAvailable)
    );

    let unit = ambulance(7, north_of_centre(2_000.0), world.now());
    node.fleet.send(UpsertUnit(unit)).await.unwrap().unwrap();
    resolve_now(&node).await;
    assert_eq!(offers(&world.bus.published()), vec![(job(1), UnitId(7))]);
}

#[actix::test]
async fn a_candidate_that_went_off_duty_after_the_search_is_skipped_at_the_moment_of_its_offer() {
    tokio::time::pause();
    let (world, node) = busy_fleet(&[500.0, 900.0, 1_400.0]);
    for unit in 1..=3 {
        free(&node, unit).await;
    }
    open_request(&world, 1);
    node.dispatcher
        .send(call(1, 0.0, Priority::Category2, 0))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    assert_eq!(offers(&world.bus.published()), vec![(job(1), UnitId(1))]);

    // Unit 2 was in the candidate list but goes off duty before unit 1 answers.
    node.fleet
        .send(SetUnitStatus {
            unit: UnitId(2),
            status: UnitStatus::OffDuty,
        })
        .await
        .unwrap();
    let decline = OfferAnswer {
        job: job(1),
        unit: UnitId(1),
        accepted: false,
    };
    assert_eq!(
        node.dispatcher.send(decline).await.unwrap(),
        AnswerOutcome::Declined
    );
    settle().await;
    assert_eq!(
        offers(&world.bus.published()),
        vec![(job(1), UnitId(1)), (job(1), UnitId(3))]
    );
}

/// A preemptor that always gives `unit` and hands back `requeue` as the job it was taken from, and
/// counts the questions.
struct FakePreemptor {
    unit: UnitId,
    requeue: Dispatch,
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl actix::Actor for FakePreemptor {
    type Context = actix::Context<Self>;
}

impl actix::Handler<ConsiderPreemption> for FakePreemptor {
    type Result = Option<Preempted>;

    fn handle(&mut self, ask: ConsiderPreemption, _: &mut actix::Context<Self>) -> Option<Preempted> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(ask.priority, Priority::Category1);
        Some(Preempted {
            unit: self.unit,
            requeue: self.requeue.clone(),
        })
    }
}

#[actix::test]
async fn a_category_1_call_whose_only_free_unit_is_far_takes_a_preempted_unit_and_the_other_call_is_dispatched_again()
 {
    use actix::Actor;
    use onemedi_actors::{
        dispatch::{DispatchOutcome, DispatchSettings, Dispatcher},
        entity::{EntityRegistry, EntitySettings},
        fleet::{FleetActor, FleetIndex},
    };
    tokio::time::pause();
    let world = World::new();
    // The only free unit is 25 km away (well over 5 minutes).
    let far = ambulance(1, north_of_centre(25_000.0), world.now());
    let mut index = FleetIndex::new(h3o::Resolution::Nine, Duration::from_secs(24 * 3600));
    index.upsert(far).unwrap();
    let ports = world.ports();
    let fleet = FleetActor::new(index, ports.clock.clone()).start();
    let registry = EntityRegistry::new(ports.clone(), EntitySettings::default()).start();
    open_request(&world, 1);
    open_request(&world, 2);
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let preemptor = FakePreemptor {
        unit: UnitId(9),
        requeue: call(2, 3_000.0, Priority::Category4, -600),
        asked: asked.clone(),
    }
    .start();
    let settings = DispatchSettings {
        preempt_up_to: Some(Priority::Category1),
        preempt_after: Duration::from_secs(300),
        ..Default::default()
    };
    let dispatcher = Dispatcher::new(ports, fleet, Some(registry.recipient()), settings)
        .with_preemptor(preemptor.recipient())
        .start();

    dispatcher
        .send(call(1, 0.0, Priority::Category1, 0))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    tokio::time::advance(Duration::from_millis(50)).await;
    settle().await;
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        dispatcher.send(DispatchStatus(job(1))).await.unwrap(),
        Some(DispatchPhase::Done(DispatchOutcome::Assigned(UnitId(9))))
    );
    // The call the unit was taken from is worked again here: offered the free (far) unit.
    tokio::time::advance(Duration::from_millis(50)).await;
    settle().await;
    assert_eq!(offers(&world.bus.published()), vec![(job(2), UnitId(1))]);
}

#[actix::test]
async fn lower_categories_leave_the_reserve_free_for_more_urgent_calls_and_wait_queued() {
    tokio::time::pause();
    let world = World::new();
    let units: Vec<_> = [500.0, 1_000.0, 1_500.0]
        .iter()
        .enumerate()
        .map(|(i, &d)| ambulance(i as i64 + 1, north_of_centre(d), world.now()))
        .collect();
    let settings = onemedi_actors::dispatch::DispatchSettings {
        reserve_c1: 1,
        reserve_c1_c2: 2,
        ..Default::default()
    };
    let node = Node::start_with(&world.ports(), &units, settings);
    for id in 1..=4 {
        open_request(&world, id);
    }
    // Three units free: a category 4 call may take one (three > a reserve of two), the next must wait.
    node.dispatcher
        .send(call(1, 0.0, Priority::Category4, 0))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    assert_eq!(offers(&world.bus.published()), vec![(job(1), UnitId(1))]);
    node.dispatcher
        .send(call(2, 0.0, Priority::Category3, 10))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    resolve_now(&node).await;
    assert_eq!(offers(&world.bus.published()).len(), 1);
    assert_eq!(
        stored(&world, 2),
        EntityState::AmbulanceRequest(AmbulanceStatus::Queued)
    );
    // A category 2 call takes one of the two left (two > a reserve of one); a category 1 call the last.
    node.dispatcher
        .send(call(3, 0.0, Priority::Category2, 20))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    resolve_now(&node).await;
    node.dispatcher
        .send(call(4, 0.0, Priority::Category1, 30))
        .await
        .unwrap()
        .unwrap();
    settle().await;
    resolve_now(&node).await;
    let mut made = offers(&world.bus.published());
    made.sort_by_key(|(j, _)| j.raw_id());
    let jobs: Vec<i64> = made.iter().map(|(j, _)| j.raw_id()).collect();
    assert_eq!(jobs, vec![1, 3, 4], "{made:?}");
    assert_eq!(
        stored(&world, 2),
        EntityState::AmbulanceRequest(AmbulanceStatus::Queued)
    );
}
