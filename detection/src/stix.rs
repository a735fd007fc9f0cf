//! STIX 2.1 indicator bundles: the subset of the patterning language that names single
//! observables (`ipv4-addr:value`, `ipv6-addr:value`, `domain-name:value` and
//! `file:hashes.'SHA-256'`), joined by `OR`.
//!
//! Anything richer (`AND`, `FOLLOWEDBY`, `MATCHES`, other object types) cannot be reduced to a
//! set of indicators, so such objects are reported as unsupported and skipped.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::indicator::{Indicator, IndicatorError, IpNet, normalize_domain, parse_sha256};

/// Why one STIX object was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StixObjectError {
    /// The object is not valid for its type.
    #[error("object {id}: invalid: {message}")]
    Invalid {
        /// The object's `id`, or `?` when it has none.
        id: String,
        /// What serde found wrong.
        message: String,
    },
    /// An indicator without a `pattern`.
    #[error("indicator {id}: no pattern")]
    MissingPattern {
        /// The indicator's `id`.
        id: String,
    },
    /// The pattern is not in the STIX patterning language.
    #[error("indicator {id}: pattern_type {pattern_type:?} is not supported (only \"stix\")")]
    UnsupportedPatternType {
        /// The indicator's `id`.
        id: String,
        /// The pattern type found.
        pattern_type: String,
    },
    /// The pattern is not a disjunction of simple comparisons.
    #[error("indicator {id}: pattern {pattern:?}: {reason}")]
    UnsupportedPattern {
        /// The indicator's `id`.
        id: String,
        /// The pattern as found.
        pattern: String,
        /// What part is not supported.
        reason: String,
    },
    /// `valid_until` is not a STIX timestamp (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`).
    #[error("indicator {id}: valid_until {value:?} is not a STIX timestamp")]
    BadTimestamp {
        /// The indicator's `id`.
        id: String,
        /// The text as found.
        value: String,
    },
    /// A value in the pattern is not a valid indicator.
    #[error("indicator {id}: {source}")]
    BadValue {
        /// The indicator's `id`.
        id: String,
        /// What is wrong with the value.
        #[source]
        source: IndicatorError,
    },
}

/// The file is not a STIX bundle at all: nothing in it can be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StixBundleError {
    /// Not JSON, or not an object with an `objects` array.
    #[error("not a STIX bundle: {0}")]
    Json(#[from] serde_json::Error),
    /// A JSON object whose `type` is not `bundle`.
    #[error("not a STIX bundle: \"type\" is {0:?}, expected \"bundle\"")]
    NotABundle(String),
}

#[derive(Deserialize)]
struct Bundle<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow, default)]
    objects: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct StixObject {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    pattern_type: Option<String>,
    #[serde(default)]
    revoked: bool,
    #[serde(default)]
    valid_until: Option<String>,
}

/// A UTC instant at one-second resolution, as the first 19 characters of an RFC 3339 / STIX
/// timestamp (`2026-11-27T20:47:28`). Such strings order like the instants they name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(String);

impl Timestamp {
    /// Parses a STIX timestamp: `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let shape = b"dddd-dd-ddTdd:dd:dd";
        if bytes.len() < shape.len() + 1 || bytes.last() != Some(&b'Z') {
            return None;
        }
        let head_ok = shape.iter().zip(bytes).all(|(&want, &got)| match want {
            b'd' => got.is_ascii_digit(),
            other => got == other,
        });
        let tail = &bytes[shape.len()..bytes.len() - 1];
        let tail_ok = match tail {
            [] => true,
            [b'.', digits @ ..] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        (head_ok && tail_ok).then(|| Self(text[..shape.len()].to_owned()))
    }

    /// The timestamp of a system time (times before 1970 clamp to the epoch).
    pub fn from_system_time(time: SystemTime) -> Self {
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        Self(format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        ))
    }
}

/// Proleptic Gregorian date (year, month, day) of a day count since 1970-01-01 (Howard
/// Hinnant's algorithm). Also the agent's: every record's timestamp is written with it.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// What one bundle yielded.
#[derive(Debug, Default)]
pub struct StixContents {
    /// Indicators accepted, each with the 1-based line of the object it came from.
    pub indicators: Vec<(usize, Indicator<'static>)>,
    /// Objects skipped, each with its line.
    pub errors: Vec<(usize, StixObjectError)>,
    /// Indicator objects marked `revoked: true`, skipped on purpose.
    pub revoked: usize,
    /// Indicator objects whose `valid_until` has passed, skipped on purpose.
    pub expired: usize,
}

/// Parses a STIX 2.1 bundle as of `now` (indicators whose `valid_until` is not after `now`
/// are skipped and counted). A bad object is reported with its line and skipped; only a file
/// that is not a bundle at all is an error.
pub fn parse_bundle(text: &str, now: &Timestamp) -> Result<StixContents, StixBundleError> {
    let bundle: Bundle<'_> = serde_json::from_str(text)?;
    if bundle.kind != "bundle" {
        return Err(StixBundleError::NotABundle(bundle.kind));
    }
    let mut out = StixContents::default();
    let base = text.as_ptr() as usize;
    let (mut line, mut scanned) = (1usize, 0usize);
    for raw in bundle.objects {
        // RawValue borrows from `text`, so its address gives its offset, and the offset its
        // line: objects come in file order, so the scan is linear overall.
        let offset = (raw.get().as_ptr() as usize)
            .saturating_sub(base)
            .min(text.len());
        if offset >= scanned {
            line += text.as_bytes()[scanned..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            scanned = offset;
        }
        match parse_object(raw.get(), now) {
            Ok(ObjectOutcome::Indicators(found)) => {
                out.indicators.extend(found.into_iter().map(|i| (line, i)))
            }
            Ok(ObjectOutcome::Revoked) => out.revoked += 1,
            Ok(ObjectOutcome::Expired) => out.expired += 1,
            Ok(ObjectOutcome::NotAnIndicator) => {}
            Err(e) => out.errors.push((line, e)),
        }
    }
    Ok(out)
}

enum ObjectOutcome {
    Indicators(Vec<Indicator<'static>>),
    Revoked,
    Expired,
    NotAnIndicator,
}

fn parse_object(raw: &str, now: &Timestamp) -> Result<ObjectOutcome, StixObjectError> {
    let object: StixObject = serde_json::from_str(raw).map_err(|e| StixObjectError::Invalid {
        id: id_of(raw),
        message: e.to_string(),
    })?;
    if object.kind != "indicator" {
        return Ok(ObjectOutcome::NotAnIndicator);
    }
    let id = object.id.unwrap_or_else(|| "?".to_owned());
    if object.revoked {
        return Ok(ObjectOutcome::Revoked);
    }
    if let Some(value) = object.valid_until {
        match Timestamp::parse(&value) {
            Some(until) if until <= *now => return Ok(ObjectOutcome::Expired),
            Some(_) => {}
            None => return Err(StixObjectError::BadTimestamp { id, value }),
        }
    }
    if let Some(pattern_type) = object.pattern_type.filter(|t| t != "stix") {
        return Err(StixObjectError::UnsupportedPatternType { id, pattern_type });
    }
    let pattern = object
        .pattern
        .ok_or_else(|| StixObjectError::MissingPattern { id: id.clone() })?;
    parse_pattern(&pattern, &id).map(ObjectOutcome::Indicators)
}

/// Best-effort `id` of an object that did not deserialise, for the report.
fn id_of(raw: &str) -> String {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(raw)
        .ok()
        .and_then(|o| o.id)
        .unwrap_or_else(|| "?".to_owned())
}

#[derive(Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Equals,
    Word(String),
    Str(String),
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '[' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ']' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            '\'' => {
                chars.next();
                tokens.push(Token::Str(quoted(&mut chars)?));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                // An object path such as `file:hashes.'SHA-256'` keeps its quoted segment.
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.') {
                        word.push(c);
                        chars.next();
                    } else if c == '\'' && word.ends_with('.') {
                        chars.next();
                        word.push_str(&quoted(&mut chars)?);
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    let mut value = String::new();
    loop {
        match chars.next() {
            Some('\\') => match chars.next() {
                Some(c @ ('\'' | '\\')) => value.push(c),
                _ => return Err("invalid escape in string literal".to_owned()),
            },
            Some('\'') => return Ok(value),
            Some(c) => value.push(c),
            None => return Err("unterminated string literal".to_owned()),
        }
    }
}

fn parse_pattern(pattern: &str, id: &str) -> Result<Vec<Indicator<'static>>, StixObjectError> {
    let unsupported = |reason: String| StixObjectError::UnsupportedPattern {
        id: id.to_owned(),
        pattern: pattern.to_owned(),
        reason,
    };
    let tokens = tokenize(pattern).map_err(unsupported)?;
    let mut out = Vec::new();
    let mut rest = tokens.as_slice();
    let mut expect_observation = true;
    while !rest.is_empty() {
        if expect_observation {
            let [Token::Open, tail @ ..] = rest else {
                return Err(unsupported("expected '['".to_owned()));
            };
            rest = tail;
            loop {
                let [Token::Word(path), op, Token::Str(value), tail @ ..] = rest else {
                    return Err(unsupported(
                        "expected a comparison like ipv4-addr:value = '...'".to_owned(),
                    ));
                };
                let is_subset = matches!(op, Token::Word(w) if w.eq_ignore_ascii_case("ISSUBSET"));
                if *op != Token::Equals && !is_subset {
                    return Err(unsupported(format!("operator {op:?} is not supported")));
                }
                out.push(comparison(path, is_subset, value).map_err(|e| match e {
                    ComparisonError::Path(reason) => unsupported(reason),
                    ComparisonError::Value(source) => StixObjectError::BadValue {
                        id: id.to_owned(),
                        source,
                    },
                })?);
                rest = tail;
                match rest {
                    [Token::Word(w), tail @ ..] if w.eq_ignore_ascii_case("OR") => rest = tail,
                    [Token::Close, tail @ ..] => {
                        rest = tail;
                        break;
                    }
                    _ => {
                        return Err(unsupported(
                            "only OR between comparisons is supported".to_owned(),
                        ));
                    }
                }
            }
            expect_observation = false;
        } else {
            match rest {
                [Token::Word(w), tail @ ..] if w.eq_ignore_ascii_case("OR") => {
                    rest = tail;
                    expect_observation = true;
                }
                _ => {
                    return Err(unsupported(
                        "only OR between observations is supported".to_owned(),
                    ));
                }
            }
        }
    }
    if expect_observation {
        return Err(unsupported("empty or dangling pattern".to_owned()));
    }
    Ok(out)
}

enum ComparisonError {
    Path(String),
    Value(IndicatorError),
}

fn comparison(
    path: &str,
    is_subset: bool,
    value: &str,
) -> Result<Indicator<'static>, ComparisonError> {
    match path {
        "ipv4-addr:value" | "ipv6-addr:value" => {
            let net: IpNet = value.parse().map_err(ComparisonError::Value)?;
            let v4 = path.starts_with("ipv4");
            if net.addr().is_ipv4() != v4 {
                return Err(ComparisonError::Value(IndicatorError::InvalidIp {
                    value: value.to_owned(),
                }));
            }
            Ok(Indicator::Ip(net))
        }
        _ if is_subset => Err(ComparisonError::Path(format!(
            "ISSUBSET only applies to IP addresses, not {path}"
        ))),
        "domain-name:value" => normalize_domain(value)
            .map(|d| Indicator::Domain(d.into_owned().into()))
            .map_err(ComparisonError::Value),
        "file:hashes.SHA-256" | "file:hashes.SHA256" | "file:hashes.sha256" => parse_sha256(value)
            .map(Indicator::Sha256)
            .map_err(ComparisonError::Value),
        other => Err(ComparisonError::Path(format!(
            "object path {other} is not supported"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-27T12:00:00Z").unwrap()
    }

    #[test]
    fn timestamps_parse_order_and_come_from_the_clock() {
        let t = Timestamp::parse("2026-11-27T12:00:00.125Z").unwrap();
        assert_eq!(t, now());
        assert!(Timestamp::parse("2026-11-27T12:00:01Z").unwrap() > now());
        assert!(Timestamp::parse("2025-12-31T23:59:59Z").unwrap() < now());
        for bad in [
            "2026-11-27",
            "2026-11-27T12:00:00",
            "2026-11-27 12:00:00Z",
            "2026-11-27T12:00:00.Z",
            "x",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH),
            Timestamp::parse("1970-01-01T00:00:00Z").unwrap()
        );
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_786_123);
        assert_eq!(
            Timestamp::from_system_time(leap),
            Timestamp::parse("2000-02-29T01:02:03Z").unwrap()
        );
        let later = UNIX_EPOCH + std::time::Duration::from_secs(1_795_812_448);
        assert_eq!(
            Timestamp::from_system_time(later),
            Timestamp::parse("2026-11-27T20:47:28Z").unwrap()
        );
    }

    #[test]
    fn expired_indicators_are_skipped_and_bad_expiry_reported() {
        let text = r#"{"type": "bundle", "objects": [
    {"type": "indicator", "id": "indicator--old", "pattern": "[ipv4-addr:value = '192.0.2.1']", "valid_until": "2026-01-01T00:00:00Z"},
    {"type": "indicator", "id": "indicator--new", "pattern": "[ipv4-addr:value = '192.0.2.2']", "valid_until": "2027-01-01T00:00:00.000Z"},
    {"type": "indicator", "id": "indicator--bad", "pattern": "[ipv4-addr:value = '192.0.2.3']", "valid_until": "soon"}
]}"#;
        let out = parse_bundle(text, &now()).unwrap();
        assert_eq!(out.expired, 1);
        assert_eq!(out.indicators.len(), 1);
        assert_eq!(
            out.indicators[0].1,
            Indicator::Ip("192.0.2.2".parse().unwrap())
        );
        assert!(matches!(
            &out.errors[..],
            [(4, StixObjectError::BadTimestamp { .. })]
        ));
    }

    const HASH: &str = "6b15cf51e4dff3e25b805173eef88940dbeb52b2662bd265450e6e54d5bb84d6";

    #[test]
    fn parses_simple_patterns() {
        let found = parse_pattern("[ipv4-addr:value = '198.51.100.0/24']", "x").unwrap();
        assert_eq!(
            found,
            vec![Indicator::Ip("198.51.100.0/24".parse().unwrap())]
        );
        let found = parse_pattern(
            &format!("[domain-name:value = 'Evil.Example' OR file:hashes.'SHA-256' = '{HASH}'] OR [ipv6-addr:value ISSUBSET '2001:db8::/32']"),
            "x",
        )
        .unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[0], Indicator::Domain("evil.example".into()));
        assert!(matches!(found[1], Indicator::Sha256(d) if d[0] == 0x6b));
    }

    #[test]
    fn rejects_what_cannot_be_reduced_to_indicators() {
        for p in [
            "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.b']",
            "[url:value = 'http://a.b/c']",
            "[domain-name:value MATCHES '^a']",
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.5']",
            "[ipv4-addr:value = '1.2.3.4'",
            "",
            "[domain-name:value = 'unterminated]",
        ] {
            assert!(
                matches!(
                    parse_pattern(p, "x"),
                    Err(StixObjectError::UnsupportedPattern { .. })
                ),
                "{p}"
            );
        }
        assert!(matches!(
            parse_pattern("[ipv4-addr:value = '2001:db8::1']", "x"),
            Err(StixObjectError::BadValue { .. })
        ));
    }

    #[test]
    fn bundle_reports_bad_objects_with_their_line() {
        let text = r#"{
  "type": "bundle",
  "id": "bundle--1",
  "objects": [
    {"type": "identity", "id": "identity--1", "name": "x"},
    {"type": "indicator", "id": "indicator--1", "pattern_type": "stix",
     "pattern": "[ipv4-addr:value = '192.0.2.1']"},
    {"type": "indicator", "id": "indicator--2", "pattern": "[url:value = 'x']"},
    {"type": "indicator", "id": "indicator--3", "pattern": "[ipv4-addr:value = '192.0.2.3']", "revoked": true},
    {"type": "indicator", "id": "indicator--4", "pattern_type": "sigma", "pattern": "x"},
    {"type": "indicator", "id": "indicator--5"},
    {"type": "indicator", "id": "indicator--6", "pattern": 5},
    {"type": "indicator", "id": "indicator--7", "pattern": "[domain-name:value = 'ok.example']"}
  ]
}"#;
        let out = parse_bundle(text, &now()).unwrap();
        assert_eq!(out.indicators.len(), 2);
        assert_eq!(out.indicators[0].0, 6);
        assert_eq!(out.indicators[1].0, 13);
        assert_eq!(out.revoked, 1);
        let lines: Vec<usize> = out.errors.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![8, 10, 11, 12]);
        assert!(out.errors[3].1.to_string().contains("indicator--6"));
    }

    #[test]
    fn non_bundles_are_errors() {
        assert!(matches!(
            parse_bundle(r#"{"type": "indicator", "objects": []}"#, &now()),
            Err(StixBundleError::NotABundle(_))
        ));
        assert!(matches!(
            parse_bundle("{", &now()),
            Err(StixBundleError::Json(_))
        ));
    }
}
