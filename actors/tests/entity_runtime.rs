//! The entity runtime: activation on demand, idempotent commands, supervision, passivation, deadlines.

mod support;

use std::{sync::atomic::Ordering, time::Duration};

use actix::{Actor, Supervisor};
use chrono::TimeDelta;
use onemedi_actors::{
    entity::{
        ApplyCommand, Command, CommandOutcome, EntityActor, EntityError, EntityRegistry, EntitySettings,
        Execute, Inspect, LiveEntities,
    },
    events::DomainEvent,
    ids::{AmbulanceRequestId, OrderId, SlotId, UnitId, UserId},
    machines::{
        Agent, AmbulanceEvent, AmbulanceStatus, EntityEvent, EntityKey, EntityState, OrderEvent, OrderStatus,
        SlotEvent, SlotStatus,
    },
};
use support::{World, cmd};

const ORDER: EntityKey = EntityKey::Order(OrderId(1));

fn order_command(id: &str, event: OrderEvent) -> Command {
    Command {
        id: cmd(id),
        agent: Agent::User(UserId(77)),
        event: EntityEvent::Order(event),
        note: None,
    }
}

fn registry(world: &World, idle_after: Duration) -> actix::Addr<EntityRegistry> {
    EntityRegistry::new(world.ports(), EntitySettings { idle_after }).start()
}

#[actix::test]
async fn a_command_retried_with_the_same_id_is_applied_only_once() {
    let world = World::new();
    world
        .store
        .inner
        .insert_entity(ORDER, EntityState::Order(OrderStatus::Pending));
    let registry = registry(&world, Duration::from_secs(60));

    let first = registry
        .send(Execute {
            key: ORDER,
            command: order_command("c1", OrderEvent::Confirm),
        })
        .await
        .unwrap();
    let again = registry
        .send(Execute {
            key: ORDER,
            command: order_command("c1", OrderEvent::Confirm),
        })
        .await
        .unwrap();

    assert_eq!(first.unwrap().outcome, CommandOutcome::Applied);
    let again = again.unwrap();
    assert_eq!(again.outcome, CommandOutcome::AlreadyApplied);
    assert_eq!(
        (again.state, again.version),
        (EntityState::Order(OrderStatus::Confirmed), 1)
    );
    assert_eq!(world.store.inner.timeline(ORDER).len(), 1);
}

#[actix::test]
async fn every_transition_is_recorded_with_its_time_and_agent_before_it_is_announced() {
    tokio::time::pause();
    let world = World::new();
    world
        .store
        .inner
        .insert_entity(ORDER, EntityState::Order(OrderStatus::Pending));
    let registry = registry(&world, Duration::from_secs(60));

    registry
        .send(Execute {
            key: ORDER,
            command: order_command("c1", OrderEvent::Confirm),
        })
        .await
        .unwrap()
        .unwrap();
    registry
        .send(Execute {
            key: ORDER,
            command: order_command("c2", OrderEvent::Pack),
        })
        .await
        .unwrap()
        .unwrap();

    let timeline = world.store.inner.timeline(ORDER);
    let steps: Vec<_> = timeline
        .iter()
        .map(|t| (t.from.name(), t.to.name(), t.event.as_str()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("pending", "confirmed", "confirm"),
            ("confirmed", "packed", "pack")
        ]
    );
    assert!(
        timeline
            .iter()
            .all(|t| t.agent == Agent::User(UserId(77)) && t.at == world.now())
    );
    let announced: Vec<_> = world
        .bus
        .published()
        .into_iter()
        .filter_map(|(_, e)| match e {
            DomainEvent::StateChanged { to, version, .. } => Some((to, version)),
            _ => None,
        })
        .collect();
    assert_eq!(
        announced,
        vec![("confirmed".to_owned(), 1), ("packed".to_owned(), 2)]
    );
}

#[actix::test]
async fn an_illegal_move_is_rejected_and_nothing_is_recorded() {
    let world = World::new();
    world
        .store
        .inner
        .insert_entity(ORDER, EntityState::Order(OrderStatus::Pending));
    let registry = registry(&world, Duration::from_secs(60));

    let result = registry
        .send(Execute {
            key: ORDER,
            command: order_command("c1", OrderEvent::Deliver),
        })
        .await
        .unwrap();

    assert!(matches!(result, Err(EntityError::Rejected(_))), "{result:?}");
    assert!(world.store.inner.timeline(ORDER).is_empty());
}

#[actix::test]
async fn a_command_for_an_entity_that_does_not_exist_reports_not_found() {
    let world = World::new();
    let registry = registry(&world, Duration::from_secs(60));
    let result = registry
        .send(Execute {
            key: ORDER,
            command: order_command("c1", OrderEvent::Confirm),
        })
        .await
        .unwrap();
    assert_eq!(result, Err(EntityError::NotFound(ORDER)));
}

#[actix::test]
async fn a_supervised_entity_that_panics_mid_command_is_restarted_with_its_state_reloaded() {
    let world = World::new();
    world
        .store
        .inner
        .insert_entity(ORDER, EntityState::Order(OrderStatus::Pending));
    let registry = registry(&world, Duration::from_secs(60));
    registry
        .send(Execute {
            key: ORDER,
            command: order_command("c1", OrderEvent::Confirm),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(world.store.loads.load(Ordering::SeqCst), 1);

    world.store.panic_next_append.store(true, Ordering::SeqCst);
    let crashed = registry
        .send(Execute {
            key: ORDER,
            command: order_command("c2", OrderEvent::Pack),
        })
        .await
        .unwrap();
    assert_eq!(crashed, Err(EntityError::Crashed(ORDER)));

    // The same actor (the registry still runs one) answers again, from freshly loaded state.
    let retried = registry
        .send(Execute {
            key: ORDER,
            command: order_command("c2", OrderEvent::Pack),
        })
        .await
        .unwrap();
    let retried = retried.unwrap();
    assert_eq!(
        (retried.state, retried.version),
        (EntityState::Order(OrderStatus::Packed), 2)
    );
    assert_eq!(
        world.store.loads.load(Ordering::SeqCst),
        2,
        "restarting() reloaded from the store"
    );
    assert_eq!(registry.send(LiveEntities).await.unwrap(), 1);
}

#[actix::test]
async fn a_free_standing_supervised_actor_survives_a_panic_and_keeps_its_address() {
    let world = World::new();
    world
        .store
        .inner
        .insert_entity(ORDER, EntityState::Order(OrderStatus::Pending));
    let ports = world.ports();
    let addr = Supervisor::start(move |_| EntityActor::new(ORDER, 1, ports, EntitySettings::default(), None));

    world.store.panic_next_append.store(true, Ordering::SeqCst);
    let crashed = addr
        .send(ApplyCommand(order_command("c1", OrderEvent::Confirm)))
        .await
        .unwrap();
    assert_eq!(crashed, Err(EntityError::Crashed(ORDER)));
    let ok = addr
        .send(ApplyCommand(order_command("c1", OrderEvent::Confirm)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.state, EntityState::Order(OrderStatus::Confirmed));
}

#[actix::test]
async fn an_idle_entity_is_stopped_and_started_again_on_demand() {
    tokio::time::pause();
    let world = World::new();
    world
        .store
        .inner
        .insert_entity(ORDER, EntityState::Order(OrderStatus::Pending));
    let registry = registry(&world, Duration::from_secs(30));
    registry
        .send(Execute {
            key: ORDER,
            command: order_command("c1", OrderEvent::Confirm),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(registry.send(LiveEntities).await.unwrap(), 1);

    tokio::time::advance(Duration::from_secs(31)).await;
    tokio::task::yield_now().await;
    assert_eq!(registry.send(LiveEntities).await.unwrap(), 0);

    let next = registry
        .send(Execute {
            key: ORDER,
            command: order_command("c2", OrderEvent::Pack),
        })
        .await
        .unwrap();
    assert_eq!(next.unwrap().state, EntityState::Order(OrderStatus::Packed));
    assert_eq!(
        world.store.loads.load(Ordering::SeqCst),
        2,
        "re-created from the store"
    );
    assert_eq!(registry.send(LiveEntities).await.unwrap(), 1);
}

#[actix::test]
async fn a_held_slot_reopens_by_itself_when_the_hold_expires() {
    tokio::time::pause();
    let world = World::new();
    let slot = EntityKey::DoctorSlot(SlotId(5));
    world
        .store
        .inner
        .insert_entity(slot, EntityState::DoctorSlot(SlotStatus::Open));
    let registry = registry(&world, Duration::from_secs(60));
    let until = world.now() + TimeDelta::minutes(10);
    let hold = Command {
        id: cmd("hold-1"),
        agent: Agent::User(UserId(3)),
        event: EntityEvent::DoctorSlot(SlotEvent::Hold {
            patient: UserId(3),
            until,
        }),
        note: None,
    };
    registry
        .send(Execute {
            key: slot,
            command: hold,
        })
        .await
        .unwrap()
        .unwrap();

    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    tokio::task::yield_now().await;
    let held = registry.send(Inspect(slot)).await.unwrap().unwrap();
    assert_eq!(
        held.state.name(),
        "held",
        "still held before the deadline; idle passivation waits for it"
    );

    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::task::yield_now().await;
    let reopened = registry.send(Inspect(slot)).await.unwrap().unwrap();
    assert_eq!(reopened.state, EntityState::DoctorSlot(SlotStatus::Open));
    let last = world.store.inner.timeline(slot).pop().unwrap();
    assert_eq!((last.event.as_str(), last.agent), ("hold_expired", Agent::System));
    assert!(last.at >= until);
}

#[actix::test]
async fn a_write_that_lost_to_another_node_is_reported_as_a_conflict_and_the_retry_succeeds() {
    let world = World::new();
    let request = EntityKey::AmbulanceRequest(AmbulanceRequestId(9));
    world
        .store
        .inner
        .insert_entity(request, EntityState::AmbulanceRequest(AmbulanceStatus::Requested));
    let node_a = registry(&world, Duration::from_secs(60));
    let node_b = registry(&world, Duration::from_secs(60));
    let command = |id: &str, event| Command {
        id: cmd(id),
        agent: Agent::System,
        event: EntityEvent::AmbulanceRequest(event),
        note: None,
    };

    node_b.send(Inspect(request)).await.unwrap().unwrap();
    node_a
        .send(Execute {
            key: request,
            command: command("a1", AmbulanceEvent::Offer(UnitId(1))),
        })
        .await
        .unwrap()
        .unwrap();
    let lost = node_b
        .send(Execute {
            key: request,
            command: command("b1", AmbulanceEvent::Cancel),
        })
        .await
        .unwrap();
    assert_eq!(lost, Err(EntityError::Conflict(request)));

    let retried = node_b
        .send(Execute {
            key: request,
            command: command("b1", AmbulanceEvent::Cancel),
        })
        .await
        .unwrap();
    assert_eq!(
        retried.unwrap().state,
        EntityState::AmbulanceRequest(AmbulanceStatus::Cancelled)
    );
}
