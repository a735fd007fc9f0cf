//! Vigil detection logic: the GuardDuty Runtime finding catalogue, the threat-intelligence
//! engine (plain-text and STIX 2.1 lists, trusted IPs, a reloadable snapshot) and DGA scoring.
//!
//! Everything here is pure: lookups and scoring do no I/O and never block. Only the loader
//! reads files.

pub mod corpus;
pub mod dga;
pub mod finding_type;
pub mod holder;
pub mod indicator;
pub mod intel;
pub mod loader;
pub mod stix;
mod store;

pub use dga::{DgaModel, DgaModelError, DgaParams};
pub use finding_type::{DefaultSeverity, FindingType, Severity, UnknownFindingType};
pub use holder::SharedIntel;
pub use indicator::{Indicator, IndicatorError, IndicatorKind, IpNet};
pub use intel::{
    BuildError, IntelBuilder, ListFormat, ListId, ListInfo, MAX_LISTS, Matches, ThreatIntel,
};
pub use loader::{
    BUILTIN_LISTS, GUARDDUTY_TESTER_LISTS, IntelConfig, IntelError, ListSource, LoadReport,
    Malformed, TesterList, TrustedIpSource, load, load_at,
};
