//! Random interleavings of offers, declines, timeouts and competing claims from two dispatchers (two
//! nodes) sharing one store: no unit is ever assigned twice, and every request ends assigned or with
//! no unit available.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on an impossible fixture"
)]

mod support;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use onemedi_actors::{
    dispatch::{Dispatch, DispatchOutcome, DispatchPhase, DispatchStatus, OfferAnswer, Priority},
    events::DomainEvent,
    fleet::{Capabilities, UnitKind},
    ids::{AmbulanceRequestId, UnitId},
    machines::{AmbulanceStatus, EntityKey, EntityState},
    ports::Store,
};
use proptest::prelude::*;
use support::{
    World,
    dispatch::{Node, ambulance, north_of_centre, offers, settle},
};

/// What a crew does with an offer, or what a third node does meanwhile.
#[derive(Debug, Clone, Copy)]
enum Move {
    Accept,
    Decline,
    Ignore,
    /// A third node claims this unit for its own job before the crew answers.
    StolenThenAccept,
}

fn moves() -> impl Strategy<Value = Move> {
    prop_oneof![
        3 => Just(Move::Accept),
        3 => Just(Move::Decline),
        2 => Just(Move::Ignore),
        1 => Just(Move::StolenThenAccept),
    ]
}

/// Time between simulation rounds; shorter than any offer timeout so lapses interleave with answers.
const ROUND: Duration = Duration::from_secs(4);
const MAX_ROUNDS: usize = 400;

async fn simulate(units_m: Vec<f64>, jobs: usize, script: Vec<Move>) {
    tokio::time::pause();
    let world = World::new();
    let ports = world.ports();
    let fleet: Vec<_> = units_m
        .iter()
        .enumerate()
        .map(|(i, &d)| ambulance(i as i64 + 1, north_of_centre(d), world.now()))
        .collect();
    let nodes = [Node::start(&ports, &fleet), Node::start(&ports, &fleet)];
    let mut bus = world.bus.subscribe();
    let jobs: Vec<EntityKey> = (0..jobs)
        .map(|i| EntityKey::AmbulanceRequest(AmbulanceRequestId(i as i64 + 1)))
        .collect();
    let owner = |job: &EntityKey| &nodes[(job.raw_id() % 2) as usize];
    for job in &jobs {
        world
            .store
            .inner
            .insert_entity(*job, EntityState::AmbulanceRequest(AmbulanceStatus::Requested));
        let dispatch = Dispatch {
            job: *job,
            kind: UnitKind::AmbulanceAls,
            point: north_of_centre(0.0),
            priority: if job.raw_id() % 3 == 0 {
                Priority::Category3
            } else {
                Priority::Category1
            },
            required: Capabilities::NONE,
            fallback: None,
            called_at: world.now(),
        };
        owner(job).dispatcher.send(dispatch).await.unwrap().unwrap();
    }
    let thief = EntityKey::AmbulanceRequest(AmbulanceRequestId(10_000));
    let mut script = script.into_iter().cycle();
    for _ in 0..MAX_ROUNDS {
        settle().await;
        while let Ok((_, event)) = bus.try_recv() {
            let DomainEvent::OfferMade { request, unit, .. } = event else {
                continue;
            };
            let answer = |accepted| OfferAnswer {
                job: request,
                unit,
                accepted,
            };
            match script.next().unwrap_or(Move::Ignore) {
                Move::Accept => {
                    let _ = owner(&request).dispatcher.send(answer(true)).await.unwrap();
                }
                Move::Decline => {
                    let _ = owner(&request).dispatcher.send(answer(false)).await.unwrap();
                }
                Move::Ignore => {}
                Move::StolenThenAccept => {
                    world.store.claim_unit(unit, thief).await.unwrap();
                    {
                        let _ = owner(&request).dispatcher.send(answer(true)).await.unwrap();
                    };
                }
            }
        }
        // Let pending queue re-solves run: a unit freed by a decline is offered to a waiting call, and a
        // call that joined the queue is recorded there by one.
        tokio::time::advance(Duration::from_millis(100)).await;
        settle().await;
        if !bus.is_empty() {
            continue;
        }
        let mut open = false;
        for job in &jobs {
            let phase = owner(job).dispatcher.send(DispatchStatus(*job)).await.unwrap();
            open |= !matches!(phase, Some(DispatchPhase::Done(_) | DispatchPhase::Queued));
        }
        if !open {
            break;
        }
        tokio::time::advance(ROUND).await;
    }

    // Every request ended assigned or waiting in the queue, and the store agrees.
    let claims = world.store.inner.claims();
    let mut assigned_units = HashSet::new();
    for job in &jobs {
        let phase = owner(job).dispatcher.send(DispatchStatus(*job)).await.unwrap();
        let stored = world.store.inner.entity(*job).unwrap().state;
        match phase {
            Some(DispatchPhase::Done(DispatchOutcome::Assigned(unit))) => {
                assert_eq!(
                    claims.get(&unit),
                    Some(job),
                    "{unit} is claimed for {job} in the store"
                );
                assert!(assigned_units.insert(unit), "{unit} assigned twice");
                assert_eq!(
                    stored,
                    EntityState::AmbulanceRequest(AmbulanceStatus::Assigned(unit))
                );
            }
            // Nobody left who has not turned it down: the call waits, recorded as queued (or as
            // no_unit_available when no unit is on duty at all).
            Some(DispatchPhase::Queued) => {
                assert!(
                    matches!(
                        stored,
                        EntityState::AmbulanceRequest(
                            AmbulanceStatus::Queued | AmbulanceStatus::NoUnitAvailable
                        )
                    ),
                    "{job} waits in the queue but is stored {stored:?}"
                );
            }
            other => panic!("{job} ended {other:?}"),
        }
    }
    // No unit is held by two jobs, and no job holds a unit it was not assigned.
    let mut holders: HashMap<UnitId, EntityKey> = HashMap::new();
    for (unit, job) in claims {
        assert!(holders.insert(unit, job).is_none());
        assert!(
            job == thief || assigned_units.contains(&unit),
            "{job} holds {unit} without an assignment"
        );
    }
    // No job was offered the same unit twice.
    let made = offers(&world.bus.published());
    let distinct: HashSet<_> = made.iter().collect();
    assert_eq!(
        distinct.len(),
        made.len(),
        "a unit was offered the same job twice: {made:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_unit_is_ever_assigned_twice_and_every_request_ends_assigned_or_queued(
        units_m in prop::collection::vec(0.0..25_000.0_f64, 0..7),
        jobs in 1_usize..6,
        script in prop::collection::vec(moves(), 1..40),
    ) {
        actix::System::new().block_on(simulate(units_m, jobs, script));
    }
}
