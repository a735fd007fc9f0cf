//! Cluster mode's delivery spool: the API writes ([`Action`]s) the API server has not accepted
//! yet, in the agent's one on-disk queue ([`crate::spool`]).

pub use crate::spool::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_PATH, PushOutcome, SpoolError, SpoolLimits,
};

use super::publish::Action;

/// The spool of API writes.
pub type Spool = crate::spool::Spool<Action>;

impl crate::spool::SpoolEntry for Action {
    fn key(&self) -> String {
        Action::key(self)
    }

    fn severity(&self) -> vigil_crds::finding::SeverityLabel {
        Action::severity(self)
    }

    fn describe(&self) -> String {
        Action::describe(self)
    }
}
