//! `/etc/vigil/vigil.yaml`: the file form of `node-agent run`'s flags, for hosts where a unit
//! file starts the agent. Each key is a flag's long name without the dashes; a value is the
//! flag's value, `true`/`false` for a switch, and a list for a flag given several times:
//!
//! ```yaml
//! db: /var/lib/vigil/findings.db
//! findings-only: true
//! metrics-addr: 127.0.0.1:9464
//! disable-hook: [mount]
//! disable-finding: [Execution:Runtime/NewLibraryLoaded]
//! ```
//!
//! A flag on the command line wins over the file's key for it. An unknown key, or a value of the
//! wrong shape, is an error that names the file and the key: the agent does not start with a
//! setting it cannot honour.

use std::path::{Path, PathBuf};

use serde_yaml::Value;
use thiserror::Error;

/// Where a host's settings live.
pub const DEFAULT_PATH: &str = "/etc/vigil/vigil.yaml";

/// Largest settings file read.
const MAX_BYTES: u64 = 1 << 20;

/// Why the settings file cannot be used.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is over [`MAX_BYTES`].
    #[error("{path}: larger than {MAX_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Not YAML, or not a mapping.
    #[error("{path}: {problem}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the line.
        problem: String,
    },
    /// A key that is no flag of `node-agent run`.
    #[error(
        "{path}: unknown setting {key:?} (the settings are the long flags of `node-agent run`, without the dashes)"
    )]
    Unknown {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A value of a shape no flag takes.
    #[error("{path}: setting {key:?}: {problem}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Reads `path` into command-line arguments (`--key=value`, `--switch`), in the file's order,
/// leaving out keys in `given` (flags the command line already sets). `known` are the long names
/// `node-agent run` accepts.
pub fn read(path: &Path, known: &[String], given: &[String]) -> Result<Vec<String>, SettingsError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|source| SettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut text = String::new();
    file.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
    if text.len() as u64 > MAX_BYTES {
        return Err(SettingsError::TooLarge {
            path: path.to_owned(),
        });
    }
    to_args(path, &text, known, given)
}

/// The pure part of [`read`].
pub fn to_args(
    path: &Path,
    text: &str,
    known: &[String],
    given: &[String],
) -> Result<Vec<String>, SettingsError> {
    let parse = |problem: String| SettingsError::Parse {
        path: path.to_owned(),
        problem,
    };
    let doc: Value = serde_yaml::from_str(text).map_err(|e| parse(e.to_string()))?;
    let map = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        _ => return Err(parse("expected a mapping of settings".into())),
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let Value::String(key) = k else {
            return Err(parse(format!("a key is not a string: {k:?}")));
        };
        if !known.contains(&key) {
            return Err(SettingsError::Unknown {
                path: path.to_owned(),
                key,
            });
        }
        if given.contains(&key) {
            continue;
        }
        let bad = |problem| SettingsError::Value {
            path: path.to_owned(),
            key: key.clone(),
            problem,
        };
        let scalar = |v: &Value| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(bad("expected a string, number or boolean")),
        };
        match &v {
            Value::Bool(true) => out.push(format!("--{key}")),
            Value::Bool(false) | Value::Null => {}
            Value::Sequence(items) => {
                for item in items {
                    out.push(format!("--{key}={}", scalar(item)?));
                }
            }
            Value::Mapping(_) | Value::Tagged(_) => {
                return Err(bad("expected a value or a list of values, not a mapping"));
            }
            other => out.push(format!("--{key}={}", scalar(other)?)),
        }
    }
    Ok(out)
}

/// The long flags named in `args` (`--db PATH`, `--db=PATH`), without the dashes.
pub fn given_flags(args: &[String]) -> Vec<String> {
    args.iter()
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        [
            "db",
            "findings-only",
            "disable-hook",
            "disable-finding",
            "poll-ms",
            "metrics-addr",
        ]
        .map(String::from)
        .to_vec()
    }

    fn args(text: &str, given: &[&str]) -> Result<Vec<String>, SettingsError> {
        let given: Vec<String> = given.iter().map(|s| (*s).to_owned()).collect();
        to_args(Path::new("/etc/vigil/vigil.yaml"), text, &known(), &given)
    }

    #[test]
    fn settings_become_flags_in_order() {
        let text = "db: /var/lib/vigil/findings.db\nfindings-only: true\npoll-ms: 20\ndisable-hook: [dns, mount]\nmetrics-addr: null\n";
        assert_eq!(
            args(text, &[]).unwrap(),
            [
                "--db=/var/lib/vigil/findings.db",
                "--findings-only",
                "--poll-ms=20",
                "--disable-hook=dns",
                "--disable-hook=mount"
            ]
        );
        assert_eq!(
            args("findings-only: false\n", &[]).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(args("", &[]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn finding_types_are_plain_values_in_either_list_form() {
        // `:`, `/`, `&` and `!` inside the GuardDuty names need no quotes.
        let block = "disable-finding:\n  - Execution:Runtime/NewLibraryLoaded\n  - Backdoor:Runtime/C&CActivity.B!DNS\n";
        let flow = "disable-finding: [Execution:Runtime/NewLibraryLoaded, Backdoor:Runtime/C&CActivity.B!DNS]\n";
        for text in [block, flow] {
            assert_eq!(
                args(text, &[]).unwrap(),
                [
                    "--disable-finding=Execution:Runtime/NewLibraryLoaded",
                    "--disable-finding=Backdoor:Runtime/C&CActivity.B!DNS"
                ],
                "{text}"
            );
        }
    }

    #[test]
    fn the_command_line_wins() {
        let given = given_flags(&[
            "run".into(),
            "--db=/tmp/x.db".into(),
            "--poll-ms".into(),
            "5".into(),
        ]);
        assert_eq!(given, ["db", "poll-ms"]);
        let given: Vec<&str> = given.iter().map(String::as_str).collect();
        assert_eq!(
            args("db: /a\npoll-ms: 20\nfindings-only: true\n", &given).unwrap(),
            ["--findings-only"]
        );
    }

    #[test]
    fn bad_settings_name_the_file_and_the_key() {
        let cases = [
            ("dbb: /x\n", "unknown setting \"dbb\""),
            ("db: {a: 1}\n", "setting \"db\": expected a value or a list"),
            (
                "disable-hook: [[dns]]\n",
                "setting \"disable-hook\": expected a string",
            ),
            ("- db\n", "expected a mapping"),
            ("db: [unclosed\n", "/etc/vigil/vigil.yaml:"),
        ];
        for (text, want) in cases {
            let err = args(text, &[]).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("/etc/vigil/vigil.yaml"), "{err}");
        }
    }
}
