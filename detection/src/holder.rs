//! A reloadable holder for the current snapshot: readers get an `Arc` without ever blocking,
//! a reload builds the new snapshot off to the side and swaps it in atomically.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::{
    intel::ThreatIntel,
    loader::{IntelConfig, IntelError, LoadReport, load},
};

/// The agent's current threat intelligence, shared between threads.
#[derive(Debug)]
pub struct SharedIntel {
    current: ArcSwap<ThreatIntel>,
}

impl SharedIntel {
    /// Holds `intel` as the current snapshot.
    pub fn new(intel: ThreatIntel) -> Self {
        Self {
            current: ArcSwap::from_pointee(intel),
        }
    }

    /// Loads the first snapshot from `config`.
    pub fn load(config: &IntelConfig) -> Result<(Self, LoadReport), IntelError> {
        let (intel, report) = load(config)?;
        Ok((Self::new(intel), report))
    }

    /// The current snapshot. Lock-free; the snapshot stays valid for as long as the caller
    /// holds it, even across a reload.
    pub fn snapshot(&self) -> Arc<ThreatIntel> {
        self.current.load_full()
    }

    /// Replaces the current snapshot.
    pub fn replace(&self, intel: ThreatIntel) {
        self.current.store(Arc::new(intel));
    }

    /// Reloads from `config`. On error the current snapshot stays in place untouched.
    pub fn reload(&self, config: &IntelConfig) -> Result<LoadReport, IntelError> {
        let (intel, report) = load(config)?;
        self.replace(intel);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write, thread};

    use super::*;
    use crate::{
        finding_type::FindingType, indicator::IndicatorKind, intel::ListFormat, loader::ListSource,
    };

    #[test]
    fn reload_swaps_while_old_snapshots_stay_valid_and_failures_keep_the_old_one() {
        let dir = tempfile::Builder::new()
            .prefix("vigil-holder-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("list.txt");
        std::fs::write(&path, "first.example\n").unwrap();
        let config = IntelConfig {
            builtin: false,
            lists: vec![ListSource {
                name: "l".into(),
                path: path.clone(),
                format: ListFormat::PlainText(IndicatorKind::Domain),
                feeds: vec![FindingType::BackdoorCcActivityBDns],
            }],
            trusted_ips: vec![],
        };
        let (shared, _) = SharedIntel::load(&config).unwrap();
        let old = shared.snapshot();

        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"second.example\n")
            .unwrap();
        // Readers on other threads keep working during the reload.
        thread::scope(|s| {
            let reader = s.spawn(|| {
                (0..1000)
                    .filter(|_| {
                        !shared.snapshot().lookup_domain("first.example").is_empty()
                            || !shared.snapshot().lookup_domain("second.example").is_empty()
                    })
                    .count()
            });
            shared.reload(&config).unwrap();
            assert_eq!(reader.join().unwrap(), 1000);
        });
        assert!(old.lookup_domain("first.example").contains("l"));
        assert!(
            shared
                .snapshot()
                .lookup_domain("second.example")
                .contains("l")
        );
        assert!(shared.snapshot().lookup_domain("first.example").is_empty());

        std::fs::remove_file(&path).unwrap();
        assert!(shared.reload(&config).is_err());
        assert!(
            shared
                .snapshot()
                .lookup_domain("second.example")
                .contains("l")
        );
    }
}
