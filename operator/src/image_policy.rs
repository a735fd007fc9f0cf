//! Which agent images a RuntimeMonitoringPolicy may run. Whoever can create a policy chooses
//! `spec.agent.image`, and that image runs with node-level rights (host PID, BPF, the host's
//! files): the operator renders only images its own configuration allows.

use std::fmt;

use thiserror::Error;

/// The repository of the agent image a policy runs when it names none
/// ([`vigil_crds::policy::DEFAULT_AGENT_IMAGE`]): the operator's default allow-list.
pub const DEFAULT_AGENT_REPOSITORY: &str = "ghcr.io/vigil-dev/vigil-agent";

/// Image references (or prefixes of them) the operator may render, from `--allowed-agent-image`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageAllowList {
    entries: Vec<String>,
}

/// An allow-list entry that could never match as meant.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("allowed agent image {entry:?}: {problem}")]
pub struct BadEntry {
    /// The entry as given.
    pub entry: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// A policy's image that the allow-list does not cover.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "spec.agent.image {image:?} is not allowed by the operator (--allowed-agent-image: {allowed})"
)]
pub struct ImageNotAllowed {
    /// The policy's image.
    pub image: String,
    /// The allow-list, for the message.
    pub allowed: ImageAllowList,
}

impl ImageAllowList {
    /// An allow-list of `entries`: each is a whole image reference (`registry/repo:tag`,
    /// `registry/repo@sha256:...`), a repository (`registry/repo`, any tag or digest of it), or a
    /// registry path ending in `/` (every repository below it). `*` allows every image.
    pub fn new<I, S>(entries: I) -> Result<Self, BadEntry>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut out = Vec::new();
        for e in entries {
            let entry: String = e.into();
            let trimmed = entry.trim();
            let problem = if trimmed.is_empty() {
                Some("is empty")
            } else if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Some("contains whitespace")
            } else if trimmed != "*" && trimmed.contains('*') {
                Some("wildcards other than a lone `*` are not supported; end a prefix with `/`")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(BadEntry { entry, problem });
            }
            out.push(trimmed.to_owned());
        }
        Ok(Self { entries: out })
    }

    /// Whether `image` may run: an entry equals it, or it is the entry's repository with a tag or
    /// digest, or the entry ends in `/` and the image lies below it. `ghcr.io/acme/agent` allows
    /// `ghcr.io/acme/agent:1.2` but not `ghcr.io/acme/agent-evil:1.2`.
    pub fn allows(&self, image: &str) -> bool {
        self.entries.iter().any(|e| {
            e == "*"
                || image == e
                || image.strip_prefix(e.as_str()).is_some_and(|rest| {
                    e.ends_with('/') || rest.starts_with(':') || rest.starts_with('@')
                })
        })
    }

    /// `Ok` when `image` is allowed, else why not.
    pub fn check(&self, image: &str) -> Result<(), ImageNotAllowed> {
        if self.allows(image) {
            Ok(())
        } else {
            Err(ImageNotAllowed {
                image: image.to_owned(),
                allowed: self.clone(),
            })
        }
    }
}

impl fmt::Display for ImageAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.entries.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_allow_their_image_repository_or_registry_path_only() {
        let list = ImageAllowList::new([
            "ghcr.io/vigil-dev/vigil-agent",
            "registry.internal:5000/security/",
            "quay.io/acme/agent:2.0",
        ])
        .unwrap();
        // (image, allowed)
        let table = [
            ("ghcr.io/vigil-dev/vigil-agent:0.1.0", true),
            ("ghcr.io/vigil-dev/vigil-agent@sha256:abcd", true),
            ("ghcr.io/vigil-dev/vigil-agent", true),
            ("ghcr.io/vigil-dev/vigil-agent-evil:0.1.0", false),
            ("ghcr.io/vigil-dev/vigil-agentx", false),
            ("ghcr.io/vigil-dev/other:0.1.0", false),
            ("evil.io/ghcr.io/vigil-dev/vigil-agent:0.1.0", false),
            ("registry.internal:5000/security/vigil-agent:1", true),
            ("registry.internal:5000/security/nested/agent:1", true),
            ("registry.internal:5000/securityx/agent:1", false),
            ("quay.io/acme/agent:2.0", true),
            ("quay.io/acme/agent:2.01", false),
            ("quay.io/acme/agent:2.0-debug", false),
            ("", false),
        ];
        for (image, want) in table {
            assert_eq!(list.allows(image), want, "{image}");
        }
    }

    #[test]
    fn the_default_allow_list_allows_the_default_image() {
        let list = ImageAllowList::new([DEFAULT_AGENT_REPOSITORY]).unwrap();
        assert!(list.allows(vigil_crds::policy::DEFAULT_AGENT_IMAGE));
    }

    #[test]
    fn a_lone_star_allows_everything_and_an_empty_list_nothing() {
        let any = ImageAllowList::new(["*"]).unwrap();
        assert!(any.allows("anything.example/x:1"));
        let none = ImageAllowList::new(Vec::<String>::new()).unwrap();
        assert!(!none.allows("ghcr.io/vigil-dev/vigil-agent:0.1.0"));
        let err = none.check("x:1").unwrap_err().to_string();
        assert!(
            err.contains("\"x:1\" is not allowed") && err.contains("none"),
            "{err}"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        for (entry, want) in [
            ("", "is empty"),
            ("  ", "is empty"),
            ("ghcr.io/a b", "whitespace"),
            ("ghcr.io/*/agent", "wildcards"),
        ] {
            let err = ImageAllowList::new([entry]).unwrap_err();
            assert_eq!(err.entry, entry);
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
