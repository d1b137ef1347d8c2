//! [`RecentCommands`]: a bounded memory of applied command ids, to answer retries without a store round trip.

use std::collections::{HashSet, VecDeque};

use crate::ids::CommandId;

/// How many command ids an entity remembers; older retries are caught by the store's uniqueness rule.
pub const RECENT_COMMANDS: usize = 64;

/// Insertion-ordered set of the last [`RECENT_COMMANDS`] ids.
#[derive(Debug, Default)]
pub(crate) struct RecentCommands {
    order: VecDeque<CommandId>,
    members: HashSet<CommandId>,
}

impl RecentCommands {
    pub(crate) fn contains(&self, id: &CommandId) -> bool {
        self.members.contains(id)
    }

    pub(crate) fn insert(&mut self, id: CommandId) {
        if !self.members.insert(id.clone()) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > RECENT_COMMANDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.members.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_most_recent_ids_are_remembered() {
        let mut recent = RecentCommands::default();
        for i in 0..=RECENT_COMMANDS {
            recent.insert(CommandId::parse(i.to_string()).unwrap());
        }
        assert!(!recent.contains(&CommandId::parse("0").unwrap()));
        assert!(recent.contains(&CommandId::parse(RECENT_COMMANDS.to_string()).unwrap()));
    }
}
