//! The dispatcher's deadlines — offer lapses and the forgetting of finished cascades — kept in one
//! ordered queue behind a single actor timer.
//!
//! An actix context polls every future it holds each time it wakes, so one `run_later` per deadline
//! makes each message cost as much as the number of deadlines pending: thousands of open offers and
//! ten minutes of finished cascades turned every fleet answer into thousands of timer polls. Here the
//! context holds one timer, armed for the earliest deadline.

use std::{collections::BTreeMap, time::Duration};

use actix::SpawnHandle;
use tokio::time::Instant;

use super::messages::OfferExpired;
use crate::machines::EntityKey;

/// What happens when a deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The current offer of a cascade lapses (ignored if it was answered meanwhile).
    OfferExpired(OfferExpired),
    /// A finished cascade stops being queryable.
    Forget(EntityKey),
    /// Re-solve the queue.
    Resolve,
}

/// Identifies one deadline, for cancelling it; orders deadlines by time, then by insertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    at: Instant,
    seq: u64,
}

/// Pending deadlines and the one actor timer that serves them.
#[derive(Default)]
pub(crate) struct Timers {
    queue: BTreeMap<TimerKey, Due>,
    next_seq: u64,
    /// The actor timer currently armed, and the instant it fires.
    armed: Option<(Instant, SpawnHandle)>,
}

impl Timers {
    /// Adds a deadline `after` from now.
    pub(crate) fn insert(&mut self, after: Duration, due: Due) -> TimerKey {
        let key = TimerKey {
            at: Instant::now() + after,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.queue.insert(key, due);
        key
    }

    /// Drops a deadline that has not passed yet (a no-op if it already fired).
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        self.queue.remove(&key);
    }

    /// Removes and returns, earliest first, every deadline at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().at > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }

    /// When the actor timer must fire, if it must be (re)armed: `None` when nothing is pending or the
    /// armed timer fires no later than the earliest deadline. (An armed timer that fires with nothing
    /// due is harmless: it only re-arms.)
    pub(crate) fn rearm_at(&self) -> Option<Instant> {
        let next = self.queue.first_key_value()?.0.at;
        match self.armed {
            Some((at, _)) if at <= next => None,
            _ => Some(next),
        }
    }

    /// Records the armed actor timer.
    pub(crate) fn armed(&mut self, at: Instant, handle: SpawnHandle) {
        self.armed = Some((at, handle));
    }

    /// Forgets the armed actor timer (it fired, or is being replaced), returning its handle.
    pub(crate) fn take_armed(&mut self) -> Option<SpawnHandle> {
        self.armed.take().map(|(_, handle)| handle)
    }

    /// Deadlines pending.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AmbulanceRequestId;

    fn job(id: i64) -> EntityKey {
        EntityKey::AmbulanceRequest(AmbulanceRequestId(id))
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_come_out_in_time_order_and_cancelled_ones_never() {
        let mut timers = Timers::default();
        let late = timers.insert(Duration::from_secs(30), Due::Forget(job(1)));
        timers.insert(Duration::from_secs(10), Due::Forget(job(2)));
        let cancelled = timers.insert(Duration::from_secs(5), Due::Forget(job(3)));
        timers.insert(Duration::from_secs(10), Due::Forget(job(4)));
        timers.cancel(cancelled);
        assert_eq!(timers.rearm_at(), Some(late.at - Duration::from_secs(20)));

        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(timers.pop_due(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            timers.pop_due(Instant::now()),
            [Due::Forget(job(2)), Due::Forget(job(4))]
        );
        assert_eq!(timers.len(), 1);
        timers.cancel(late);
        assert_eq!(timers.rearm_at(), None);
        assert_eq!(timers.len(), 0);
    }
}
