//! The offer cascade: ranking, answers, timeouts, lost claims, widening and escalation.

mod support;

use std::time::Duration;

use onemedi_actors::{
    dispatch::{
        AnswerOutcome, CancelDispatch, Dispatch, DispatchOutcome, DispatchPhase, DispatchStatus,
        OFFER_TIMEOUT_C1, OfferAnswer, Priority,
    },
    events::DomainEvent,
    fleet::{Capabilities, UnitKind},
    ids::{AmbulanceRequestId, UnitId},
    machines::{AmbulanceStatus, EntityKey, EntityState},
    ports::Store,
};
use support::{
    World,
    dispatch::{Node, ambulance, north_of_centre, offers, settle},
};

const JOB: EntityKey = EntityKey::AmbulanceRequest(AmbulanceRequestId(1));

fn emergency(job: EntityKey) -> Dispatch {
    Dispatch {
        job,
        kind: UnitKind::AmbulanceAls,
        point: north_of_centre(0.0),
        priority: Priority::Category1,
        required: Capabilities::DEFIBRILLATOR,
        fallback: None,
        called_at: support::t0(),
    }
}

/// A world with one open ambulance request and ambulances at the given distances north of it.
fn setup(distances_m: &[f64]) -> (World, Node) {
    let world = World::new();
    world
        .store
        .inner
        .insert_entity(JOB, EntityState::AmbulanceRequest(AmbulanceStatus::Requested));
    let units: Vec<_> = distances_m
        .iter()
        .enumerate()
        .map(|(i, &d)| ambulance(i as i64 + 1, north_of_centre(d), world.now()))
        .collect();
    let node = Node::start(&world.ports(), &units);
    (world, node)
}

fn answer(unit: i64, accepted: bool) -> OfferAnswer {
    OfferAnswer {
        job: JOB,
        unit: UnitId(unit),
        accepted,
    }
}

#[actix::test]
async fn the_nearest_unit_is_offered_first_and_assigned_when_it_accepts() {
    tokio::time::pause();
    let (world, node) = setup(&[3_000.0, 800.0, 5_000.0]);
    node.dispatcher.send(emergency(JOB)).await.unwrap().unwrap();
    settle().await;

    assert_eq!(offers(&world.bus.published()), vec![(JOB, UnitId(2))]);
    assert_eq!(
        node.dispatcher.send(answer(2, true)).await.unwrap(),
        AnswerOutcome::Assigned
    );
    settle().await;

    assert_eq!(world.store.inner.claim_of(UnitId(2)), Some(JOB));
    let status = node.dispatcher.send(DispatchStatus(JOB)).await.unwrap();
    assert_eq!(
        status,
        Some(DispatchPhase::Done(DispatchOutcome::Assigned(UnitId(2))))
    );
    let stored = world.store.inner.entity(JOB).unwrap();
    assert_eq!(
        stored.state,
        EntityState::AmbulanceRequest(AmbulanceStatus::Assigned(UnitId(2)))
    );
    let assigned = world
        .bus
        .published()
        .into_iter()
        .any(|(_, e)| matches!(e, DomainEvent::UnitAssigned { unit: UnitId(2), .. }));
    assert!(assigned);
}

#[actix::test]
async fn a_unit_that_declined_is_never_offered_again() {
    tokio::time::pause();
    let (world, node) = setup(&[500.0, 900.0]);
    node.dispatcher.send(emergency(JOB)).await.unwrap().unwrap();
    settle().await;
    assert_eq!(
        node.dispatcher.send(answer(1, false)).await.unwrap(),
        AnswerOutcome::Declined
    );
    settle().await;
    assert_eq!(
        node.dispatcher.send(answer(2, false)).await.unwrap(),
        AnswerOutcome::Declined
    );
    settle().await;

    assert_eq!(
        offers(&world.bus.published()),
        vec![(JOB, UnitId(1)), (JOB, UnitId(2))]
    );
    // Both units are on duty but have turned it down: the call waits in the queue.
    let status = node.dispatcher.send(DispatchStatus(JOB)).await.unwrap();
    assert_eq!(status, Some(DispatchPhase::Queued));
    assert_eq!(
        world.store.inner.entity(JOB).unwrap().state,
        EntityState::AmbulanceRequest(AmbulanceStatus::Queued)
    );
    assert_eq!(
        node.dispatcher.send(answer(1, true)).await.unwrap(),
        AnswerOutcome::NotOffered
    );
}

#[actix::test]
async fn an_unanswered_category_1_offer_lapses_after_its_timeout_and_the_next_unit_is_offered() {
    tokio::time::pause();
    let (world, node) = setup(&[500.0, 900.0]);
    node.dispatcher.send(emergency(JOB)).await.unwrap().unwrap();
    settle().await;

    tokio::time::advance(OFFER_TIMEOUT_C1 - Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(
        offers(&world.bus.published()),
        vec![(JOB, UnitId(1))],
        "still waiting for unit 1"
    );

    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(
        offers(&world.bus.published()),
        vec![(JOB, UnitId(1)), (JOB, UnitId(2))]
    );
    assert_eq!(
        node.dispatcher.send(answer(1, true)).await.unwrap(),
        AnswerOutcome::NotOffered
    );
    let lapsed = world
        .bus
        .published()
        .into_iter()
        .any(|(_, e)| matches!(e, DomainEvent::OfferExpired { unit: UnitId(1), .. }));
    assert!(lapsed);
}

#[actix::test]
async fn a_unit_claimed_by_another_node_first_is_skipped_for_the_next_candidate() {
    tokio::time::pause();
    let (world, node) = setup(&[500.0, 900.0]);
    let elsewhere = EntityKey::AmbulanceRequest(AmbulanceRequestId(99));
    node.dispatcher.send(emergency(JOB)).await.unwrap().unwrap();
    settle().await;
    assert!(
        world.store.claim_unit(UnitId(1), elsewhere).await.unwrap(),
        "another node wins the row"
    );

    assert_eq!(
        node.dispatcher.send(answer(1, true)).await.unwrap(),
        AnswerOutcome::Taken
    );
    settle().await;
    assert_eq!(
        offers(&world.bus.published()),
        vec![(JOB, UnitId(1)), (JOB, UnitId(2))]
    );
    assert_eq!(
        node.dispatcher.send(answer(2, true)).await.unwrap(),
        AnswerOutcome::Assigned
    );
    assert_eq!(world.store.inner.claim_of(UnitId(1)), Some(elsewhere));
    assert_eq!(world.store.inner.claim_of(UnitId(2)), Some(JOB));
}

#[actix::test]
async fn a_unit_beyond_the_first_radius_is_found_after_widening_once() {
    tokio::time::pause();
    let (world, node) = setup(&[20_000.0]);
    node.dispatcher.send(emergency(JOB)).await.unwrap().unwrap();
    settle().await;
    assert_eq!(offers(&world.bus.published()), vec![(JOB, UnitId(1))]);
}

#[actix::test]
async fn with_nobody_on_duty_in_the_service_area_the_request_is_marked_no_unit_available_escalated_and_kept_queued()
 {
    tokio::time::pause();
    let (world, node) = setup(&[40_000.0]);
    node.dispatcher.send(emergency(JOB)).await.unwrap().unwrap();
    settle().await;
    assert_eq!(
        node.dispatcher.send(DispatchStatus(JOB)).await.unwrap(),
        Some(DispatchPhase::Queued)
    );

    assert!(offers(&world.bus.published()).is_empty());
    let stored = world.store.inner.entity(JOB).unwrap();
    assert_eq!(
        stored.state,
        EntityState::AmbulanceRequest(AmbulanceStatus::NoUnitAvailable)
    );
    let names: Vec<_> = world
        .store
        .inner
        .timeline(JOB)
        .iter()
        .map(|t| t.to.name())
        .collect();
    assert_eq!(names, vec!["no_unit_available"]);
    let escalated = world
        .bus
        .published()
        .into_iter()
        .any(|(t, e)| t.as_str() == "dispatch" && e.type_name() == "escalated");
    assert!(escalated);
}

#[actix::test]
async fn cancelling_while_a_claim_is_in_flight_gives_the_unit_back() {
    tokio::time::pause();
    let (world, node) = setup(&[500.0]);
    node.dispatcher.send(emergency(JOB)).await.unwrap().unwrap();
    settle().await;

    let accept = node.dispatcher.send(answer(1, true));
    let cancel = node.dispatcher.send(CancelDispatch(JOB));
    let (accepted, cancelled) = tokio::join!(accept, cancel);
    settle().await;

    assert!(cancelled.unwrap());
    assert_eq!(accepted.unwrap(), AnswerOutcome::Taken);
    assert_eq!(world.store.inner.claim_of(UnitId(1)), None);
}

#[actix::test]
async fn an_offer_lapses_on_time_though_a_later_deadline_was_set_first_and_finished_cascades_are_forgotten() {
    tokio::time::pause();
    let (world, node) = setup(&[500.0, 900.0, 1_500.0]);
    let second = EntityKey::AmbulanceRequest(AmbulanceRequestId(2));
    world
        .store
        .inner
        .insert_entity(second, EntityState::AmbulanceRequest(AmbulanceStatus::Requested));

    // The first job finishes at once, leaving a deadline far ahead: the day it is forgotten.
    node.dispatcher.send(emergency(JOB)).await.unwrap().unwrap();
    settle().await;
    assert_eq!(
        node.dispatcher.send(answer(1, true)).await.unwrap(),
        AnswerOutcome::Assigned
    );
    settle().await;
    // Past the answered offer's would-be lapse, the only deadline left is that far one.
    tokio::time::advance(OFFER_TIMEOUT_C1 + Duration::from_secs(1)).await;
    settle().await;

    // The second job's offer lapses at its own, earlier time.
    node.dispatcher.send(emergency(second)).await.unwrap().unwrap();
    settle().await;
    tokio::time::advance(OFFER_TIMEOUT_C1 + Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(
        offers(&world.bus.published()),
        vec![(JOB, UnitId(1)), (second, UnitId(2)), (second, UnitId(3))]
    );
    assert!(node.dispatcher.send(DispatchStatus(JOB)).await.unwrap().is_some());

    // Accepted, the second offer never lapses; after the retention both cascades are forgotten.
    let accepted = node
        .dispatcher
        .send(OfferAnswer {
            job: second,
            unit: UnitId(3),
            accepted: true,
        })
        .await
        .unwrap();
    assert_eq!(accepted, AnswerOutcome::Assigned);
    tokio::time::advance(Duration::from_secs(8 * 24 * 3600)).await;
    settle().await;
    let lapses = world
        .bus
        .published()
        .into_iter()
        .filter(|(_, e)| matches!(e, DomainEvent::OfferExpired { .. }))
        .count();
    assert_eq!(lapses, 1);
    assert_eq!(node.dispatcher.send(DispatchStatus(JOB)).await.unwrap(), None);
    assert_eq!(node.dispatcher.send(DispatchStatus(second)).await.unwrap(), None);
}
