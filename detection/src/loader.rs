//! Loading threat lists from files (plain text or STIX 2.1, optionally gzip-compressed) and
//! from the built-in defaults, with a report of every malformed line.

use std::{
    fmt,
    io::Read,
    path::{Path, PathBuf},
    time::SystemTime,
};

use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};

use crate::{
    finding_type::FindingType,
    indicator::{Indicator, IndicatorError, IndicatorKind, IpNet},
    intel::{BuildError, IntelBuilder, ListFormat, ListId, ThreatIntel},
    stix::{self, StixBundleError, StixObjectError, Timestamp},
};

/// Where the agent's threat intelligence comes from. Typically part of the agent's config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelConfig {
    /// Load the lists built into the binary first (see [`BUILTIN_LISTS`]).
    #[serde(default = "default_true")]
    pub builtin: bool,
    /// Extra threat lists, loaded after the built-in ones.
    #[serde(default)]
    pub lists: Vec<ListSource>,
    /// Trusted-IP lists: addresses on them raise no network findings.
    #[serde(default)]
    pub trusted_ips: Vec<TrustedIpSource>,
}

fn default_true() -> bool {
    true
}

impl Default for IntelConfig {
    fn default() -> Self {
        Self {
            builtin: true,
            lists: Vec::new(),
            trusted_ips: Vec::new(),
        }
    }
}

/// One threat list file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSource {
    /// Unique name, shown in findings.
    pub name: String,
    /// The file; a name ending in `.gz` is decompressed.
    pub path: PathBuf,
    /// `ip`, `domain`, `sha256` (plain text) or `stix` (a STIX 2.1 bundle).
    pub format: ListFormat,
    /// Finding types a match raises; empty makes a context-only list.
    #[serde(default)]
    pub feeds: Vec<FindingType>,
}

/// One trusted-IP list file: plain text, one address or CIDR block per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIpSource {
    /// Unique name.
    pub name: String,
    /// The file; a name ending in `.gz` is decompressed.
    pub path: PathBuf,
}

/// A built-in default list, compiled into the binary from `detection/data/`.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinList {
    /// List name.
    pub name: &'static str,
    /// File name under `detection/data/`.
    pub file: &'static str,
    /// What each line holds.
    pub kind: IndicatorKind,
    /// Finding types a match raises.
    pub feeds: &'static [FindingType],
    gzip: &'static [u8],
}

impl BuiltinList {
    /// The gzip-compressed list as built into the binary.
    pub fn compressed(&self) -> &'static [u8] {
        self.gzip
    }
}

macro_rules! builtin {
    ($name:literal, $kind:ident, [$($feed:ident),*]) => {
        BuiltinList {
            name: $name,
            file: concat!($name, ".txt.gz"),
            kind: IndicatorKind::$kind,
            feeds: &[$(FindingType::$feed),*],
            gzip: include_bytes!(concat!("../data/", $name, ".txt.gz")),
        }
    };
}

/// The default lists, from the public sources described in `detection/data/README.md`. The
/// 947k-entry `c2-domains` list is not built in (18 MB); load it with a [`ListSource`].
pub const BUILTIN_LISTS: &[BuiltinList] = &[
    builtin!("c2-ips", Ip, [BackdoorCcActivityB]),
    builtin!(
        "mining-domains",
        Domain,
        [
            CryptoCurrencyBitcoinToolBDns,
            ImpactBitcoinDomainRequestReputation
        ]
    ),
    builtin!("mining-ips", Ip, [CryptoCurrencyBitcoinToolB]),
    builtin!(
        "crypto-domains",
        Domain,
        [ImpactBitcoinDomainRequestReputation]
    ),
    builtin!("sinkhole-ips", Ip, [TrojanBlackholeTraffic]),
    builtin!("sinkhole-domains", Domain, [TrojanBlackholeTrafficDns]),
    builtin!("malware-domains", Domain, [TrojanDriveBySourceTrafficDns]),
    // No Runtime finding type is raised by a drive-by IP alone: context for other findings.
    builtin!("malware-ips", Ip, []),
    builtin!("phishing-domains", Domain, [TrojanPhishingDomainRequestDns]),
    builtin!(
        "tor-ips",
        Ip,
        [UnauthorizedAccessTorClient, UnauthorizedAccessTorRelay]
    ),
    // The exit-node subset of tor-ips: context (tells a client connection from a relay one).
    builtin!("tor-exit-ips", Ip, []),
    // IPsum: scanners and brute-forcers on several blocklists, not C2: context only.
    builtin!("malicious-ips", Ip, []),
    builtin!("malware-sha256", Sha256, [ExecutionMaliciousFileExecuted]),
];

/// A list of AWS's GuardDuty tester (`awslabs/amazon-guardduty-tester`,
/// `lib/common/testResources/definitions.json`): the one domain its `threatIntel/request.sh`
/// scenario asks for (`curl http://DOMAIN/sample.dat`) to raise one DNS finding type. Built in
/// so that the tester people already run against GuardDuty checks Vigil the same way. The names
/// are AWS's own test domains; no one else's traffic goes there.
#[derive(Debug, Clone, Copy)]
pub struct TesterList {
    /// List name (`guardduty-tester-*`).
    pub name: &'static str,
    /// The tester's domain.
    pub domain: &'static str,
    /// The finding type the tester expects for it.
    pub feeds: FindingType,
}

/// The GuardDuty tester's domains, one list each (a list feeds its types for every entry).
/// Loaded with the built-in lists; they count for no type's default coverage
/// ([`BUILTIN_LISTS`] does).
pub const GUARDDUTY_TESTER_LISTS: &[TesterList] = &[
    // AWS's documented test domain for C&C (`dig guarddutyc2activityb.com`, in GuardDuty's own
    // guide and in every walkthrough); its subdomains, the tester's `c2.` among them, match too,
    // so the tester's other subdomains raise C&C beside their own type.
    TesterList {
        name: "guardduty-tester-c2",
        domain: "guarddutyc2activityb.com",
        feeds: FindingType::BackdoorCcActivityBDns,
    },
    TesterList {
        name: "guardduty-tester-crypto",
        domain: "crypto.guarddutyc2activityb.com",
        feeds: FindingType::CryptoCurrencyBitcoinToolBDns,
    },
    TesterList {
        name: "guardduty-tester-abused-rep",
        domain: "abused-rep.guarddutyc2activityb.com",
        feeds: FindingType::ImpactAbusedDomainRequestReputation,
    },
    TesterList {
        name: "guardduty-tester-crypto-rep",
        domain: "crypto-rep.guarddutyc2activityb.com",
        feeds: FindingType::ImpactBitcoinDomainRequestReputation,
    },
    TesterList {
        name: "guardduty-tester-malicious-rep",
        domain: "malicious-rep.guarddutyc2activityb.com",
        feeds: FindingType::ImpactMaliciousDomainRequestReputation,
    },
    TesterList {
        name: "guardduty-tester-suspicious-rep",
        domain: "suspicious-rep.guarddutyc2activityb.com",
        feeds: FindingType::ImpactSuspiciousDomainRequestReputation,
    },
    TesterList {
        name: "guardduty-tester-blackhole",
        domain: "guarddutyblackholeactivity.com",
        feeds: FindingType::TrojanBlackholeTrafficDns,
    },
    TesterList {
        name: "guardduty-tester-dga",
        domain: "guarddutydgaactivity.com",
        feeds: FindingType::TrojanDgaDomainRequestCDns,
    },
    TesterList {
        name: "guardduty-tester-driveby",
        domain: "guarddutydrivebyactivity.com",
        feeds: FindingType::TrojanDriveBySourceTrafficDns,
    },
    TesterList {
        name: "guardduty-tester-droppoint",
        domain: "guarddutydroppointactivity.com",
        feeds: FindingType::TrojanDropPointDns,
    },
    TesterList {
        name: "guardduty-tester-phishing",
        domain: "guarddutyphishingactivity.com",
        feeds: FindingType::TrojanPhishingDomainRequestDns,
    },
];

/// Where an input came from: a file path or a built-in list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Origin {
    /// A file on disk.
    File(PathBuf),
    /// A list compiled into the binary, by file name.
    Builtin(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Builtin(file) => write!(f, "builtin:{file}"),
        }
    }
}

/// What is wrong with one skipped entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The line is not valid UTF-8.
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// The indicator does not parse.
    #[error(transparent)]
    Indicator(#[from] IndicatorError),
    /// A STIX object was skipped.
    #[error(transparent)]
    Stix(#[from] StixObjectError),
}

/// One malformed line (or STIX object), skipped while the rest loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}: {error}")]
pub struct Malformed {
    /// The file it is in.
    pub origin: Origin,
    /// 1-based line number (for STIX, the line where the object starts).
    pub line: usize,
    /// What is wrong with it.
    pub error: EntryError,
}

/// At most this many malformed entries are kept per file; the rest are only counted, so that
/// a garbage file cannot exhaust memory through its report.
pub const MAX_REPORTED_PER_FILE: usize = 100;

/// The outcome of a load: the malformed entries skipped.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Malformed entries, at most [`MAX_REPORTED_PER_FILE`] per file.
    pub malformed: Vec<Malformed>,
    /// All malformed entries, including those not kept.
    pub malformed_total: usize,
    /// STIX indicators skipped because they are revoked.
    pub revoked: usize,
    /// STIX indicators skipped because their `valid_until` has passed.
    pub expired: usize,
}

impl LoadReport {
    fn record(
        &mut self,
        origin: &Origin,
        line: usize,
        error: EntryError,
        kept_for_file: &mut usize,
    ) {
        self.malformed_total += 1;
        if *kept_for_file < MAX_REPORTED_PER_FILE {
            *kept_for_file += 1;
            self.malformed.push(Malformed {
                origin: origin.clone(),
                line,
                error,
            });
        }
    }
}

/// A whole input could not be used. Nothing from a failed load replaces a running snapshot.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    /// The file could not be read.
    #[error("{origin}: cannot read: {source}")]
    Read {
        /// The file.
        origin: Origin,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A STIX file is not a bundle.
    #[error("{origin}: {source}")]
    Stix {
        /// The file.
        origin: Origin,
        /// What is wrong with it.
        #[source]
        source: StixBundleError,
    },
    /// A STIX file that is not UTF-8 (JSON must be).
    #[error("{origin}: a STIX bundle must be UTF-8 JSON")]
    StixNotUtf8 {
        /// The file.
        origin: Origin,
    },
    /// The list, or what its gzip unpacks to, is larger than [`MAX_LIST_BYTES`] (a gzip bomb in
    /// a ConfigMap would otherwise take every agent's memory).
    #[error("{origin}: larger than {limit} bytes{}", if *compressed { " once decompressed" } else { "" })]
    TooLarge {
        /// The file.
        origin: Origin,
        /// The limit.
        limit: u64,
        /// Whether the limit was hit while decompressing.
        compressed: bool,
    },
    /// The list does not fit in the snapshot.
    #[error("{origin}: {source}")]
    Build {
        /// The list's file.
        origin: Origin,
        /// Why.
        #[source]
        source: BuildError,
    },
}

/// Loads a snapshot from `config`: the built-in lists (if enabled), then each file. Malformed
/// lines are skipped and reported; an unreadable file fails the whole load, so that a reload
/// never silently drops a list that used to be there. STIX indicators are judged valid as of
/// the system clock.
pub fn load(config: &IntelConfig) -> Result<(ThreatIntel, LoadReport), IntelError> {
    load_at(config, SystemTime::now())
}

/// [`load`] as of `now`: STIX indicators whose `valid_until` is not after `now` are skipped.
pub fn load_at(
    config: &IntelConfig,
    now: SystemTime,
) -> Result<(ThreatIntel, LoadReport), IntelError> {
    let now = Timestamp::from_system_time(now);
    let mut builder = IntelBuilder::new();
    let mut report = LoadReport::default();
    if config.builtin {
        for list in BUILTIN_LISTS {
            let origin = Origin::Builtin(list.file);
            let id = builder
                .add_list(
                    list.name,
                    ListFormat::PlainText(list.kind),
                    list.feeds.to_vec(),
                    &origin.to_string(),
                )
                .map_err(|source| IntelError::Build {
                    origin: origin.clone(),
                    source,
                })?;
            load_plain_text_gzip(&mut builder, id, list.kind, list.gzip, &origin, &mut report)?;
        }
        for list in GUARDDUTY_TESTER_LISTS {
            let origin = Origin::Builtin(list.name);
            let build = |source| IntelError::Build {
                origin: origin.clone(),
                source,
            };
            let id = builder
                .add_list(
                    list.name,
                    ListFormat::PlainText(IndicatorKind::Domain),
                    vec![list.feeds],
                    &origin.to_string(),
                )
                .map_err(build)?;
            builder
                .insert(id, &Indicator::Domain(list.domain.into()))
                .map_err(build)?;
        }
    }
    for source in &config.lists {
        let origin = Origin::File(source.path.clone());
        // A gzip plain-text list is decompressed as it loads, never held whole.
        let stream = matches!(source.format, ListFormat::PlainText(_)) && is_gzip(&source.path);
        let bytes = if stream {
            read_raw(&source.path)?
        } else {
            read_file(&source.path)?
        };
        let id = builder
            .add_list(
                &source.name,
                source.format,
                source.feeds.clone(),
                &origin.to_string(),
            )
            .map_err(|e| IntelError::Build {
                origin: origin.clone(),
                source: e,
            })?;
        match source.format {
            ListFormat::PlainText(kind) if stream => {
                load_plain_text_gzip(&mut builder, id, kind, &bytes, &origin, &mut report)?
            }
            ListFormat::PlainText(kind) => {
                load_plain_text(&mut builder, id, kind, &bytes, &origin, &mut report)?
            }
            ListFormat::Stix => load_stix(&mut builder, id, &bytes, &origin, &now, &mut report)?,
        }
    }
    for source in &config.trusted_ips {
        let origin = Origin::File(source.path.clone());
        let bytes = read_file(&source.path)?;
        let id = builder
            .add_trusted_list(&source.name, &origin.to_string())
            .map_err(|e| IntelError::Build {
                origin: origin.clone(),
                source: e,
            })?;
        let mut kept = 0;
        for (line, text) in lines(&bytes) {
            match text.and_then(|t| t.parse::<IpNet>().map_err(EntryError::from)) {
                Ok(net) => builder.insert_trusted(id, net),
                Err(e) => report.record(&origin, line, e, &mut kept),
            }
        }
    }
    Ok((builder.build(), report))
}

/// The most bytes one list may hold, read or decompressed: ten times the largest built-in list
/// as decompressed, and far over what a ConfigMap (1 MiB) can carry.
pub const MAX_LIST_BYTES: u64 = 256 * 1024 * 1024;

/// Whether a list file is gzip-compressed: its name ends in `.gz`.
fn is_gzip(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Reads a file (at most [`MAX_LIST_BYTES`]), decompressing it when its name ends in `.gz`.
fn read_file(path: &Path) -> Result<Vec<u8>, IntelError> {
    let bytes = read_raw(path)?;
    if is_gzip(path) {
        gunzip(&bytes, &Origin::File(path.to_owned()))
    } else {
        Ok(bytes)
    }
}

/// Reads a file as it is on disk (at most [`MAX_LIST_BYTES`]).
fn read_raw(path: &Path) -> Result<Vec<u8>, IntelError> {
    let origin = || Origin::File(path.to_owned());
    let file = std::fs::File::open(path).map_err(|source| IntelError::Read {
        origin: origin(),
        source,
    })?;
    read_bounded(file, &origin(), false, MAX_LIST_BYTES)
}

fn gunzip(bytes: &[u8], origin: &Origin) -> Result<Vec<u8>, IntelError> {
    gunzip_bounded(bytes, origin, MAX_LIST_BYTES)
}

/// Decompresses a gzip list as the loader does, refusing it with [`IntelError::TooLarge`] once it
/// unpacks to more than `limit` bytes (the loader's limit is [`MAX_LIST_BYTES`]); never holds more
/// than one byte over `limit`. Public for the fuzz targets, which use a small limit.
pub fn gunzip_bounded(bytes: &[u8], origin: &Origin, limit: u64) -> Result<Vec<u8>, IntelError> {
    read_bounded(GzDecoder::new(bytes), origin, true, limit)
}

/// Reads `reader` to its end, failing once it yields more than `limit` bytes (without ever
/// holding more than one byte over it).
fn read_bounded(
    reader: impl Read,
    origin: &Origin,
    compressed: bool,
    limit: u64,
) -> Result<Vec<u8>, IntelError> {
    let mut out = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| IntelError::Read {
            origin: origin.clone(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(IntelError::TooLarge {
            origin: origin.clone(),
            limit,
            compressed,
        });
    }
    Ok(out)
}

/// Non-empty, non-comment lines with their 1-based numbers; `#` starts a comment anywhere.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, Result<&str, EntryError>)> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, raw)| {
            let raw = match raw.iter().position(|&b| b == b'#') {
                Some(hash) => &raw[..hash],
                None => raw,
            };
            let raw = raw.trim_ascii();
            if raw.is_empty() {
                return None;
            }
            Some((
                i + 1,
                std::str::from_utf8(raw).map_err(|_| EntryError::NotUtf8),
            ))
        })
}

/// Loads one plain-text list, skipping and reporting malformed lines.
pub fn load_plain_text(
    builder: &mut IntelBuilder,
    id: ListId,
    kind: IndicatorKind,
    bytes: &[u8],
    origin: &Origin,
    report: &mut LoadReport,
) -> Result<(), IntelError> {
    if kind == IndicatorKind::Domain {
        // One entry per line at most: size the table once instead of rehashing as it grows.
        let line_count = bytes.iter().filter(|&&b| b == b'\n').count();
        builder.reserve_domains(line_count, bytes.len());
    }
    let mut lines_done = 0;
    let mut kept = 0;
    load_lines(
        builder,
        (id, kind),
        bytes,
        &mut lines_done,
        origin,
        report,
        &mut kept,
    )
}

/// Decompressed bytes read at a time by [`load_plain_text_gzip`]: small enough that its buffer
/// never becomes a big allocation of its own.
const STREAM_CHUNK: usize = 32 * 1024;

/// Loads one gzip-compressed plain-text list as it decompresses, a chunk of whole lines at a
/// time: the same indicators, line numbers and errors as [`load_plain_text`] on the
/// decompressed bytes (and [`IntelError::TooLarge`] past [`MAX_LIST_BYTES`]), without ever
/// holding the decompressed list whole.
fn load_plain_text_gzip(
    builder: &mut IntelBuilder,
    id: ListId,
    kind: IndicatorKind,
    gzip: &[u8],
    origin: &Origin,
    report: &mut LoadReport,
) -> Result<(), IntelError> {
    let target = (id, kind);
    load_gzip_lines(builder, target, gzip, origin, report, MAX_LIST_BYTES)
}

/// [`load_plain_text_gzip`] with the limit as a parameter.
fn load_gzip_lines(
    builder: &mut IntelBuilder,
    target: (ListId, IndicatorKind),
    gzip: &[u8],
    origin: &Origin,
    report: &mut LoadReport,
    limit: u64,
) -> Result<(), IntelError> {
    let mut reader = GzDecoder::new(gzip).take(limit + 1);
    let mut buf = Vec::with_capacity(STREAM_CHUNK);
    let (mut total, mut lines_done, mut kept) = (0u64, 0, 0);
    loop {
        let start = buf.len();
        buf.resize(start + STREAM_CHUNK, 0);
        let n = match reader.read(buf.get_mut(start..).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                buf.truncate(start);
                continue;
            }
            Err(source) => {
                return Err(IntelError::Read {
                    origin: origin.clone(),
                    source,
                });
            }
        };
        buf.truncate(start + n);
        total += n as u64;
        if total > limit {
            return Err(IntelError::TooLarge {
                origin: origin.clone(),
                limit,
                compressed: true,
            });
        }
        let at_end = n == 0;
        // Whole lines only, up to the last newline (only the bytes just read can hold one: what
        // was left over is the start of a line); everything once the stream has ended.
        let newline = buf
            .get(start..)
            .and_then(|new| new.iter().rposition(|&b| b == b'\n'));
        let cut = match newline {
            _ if at_end => buf.len(),
            Some(newline) => start + newline,
            None => continue,
        };
        let chunk = buf.get(..cut).unwrap_or_default();
        load_lines(
            builder,
            target,
            chunk,
            &mut lines_done,
            origin,
            report,
            &mut kept,
        )?;
        if at_end {
            return Ok(());
        }
        buf.drain(..=cut);
    }
}

/// Loads the lines of `bytes`, which follow `lines_done` lines of the same list (and end
/// where a line ends): `lines_done` counts them in too.
fn load_lines(
    builder: &mut IntelBuilder,
    (id, kind): (ListId, IndicatorKind),
    bytes: &[u8],
    lines_done: &mut usize,
    origin: &Origin,
    report: &mut LoadReport,
    kept: &mut usize,
) -> Result<(), IntelError> {
    let first = *lines_done;
    for (line, text) in lines(bytes) {
        let parsed = text.and_then(|t| Indicator::parse(kind, t).map_err(EntryError::from));
        match parsed {
            Ok(indicator) => {
                builder
                    .insert(id, &indicator)
                    .map_err(|source| IntelError::Build {
                        origin: origin.clone(),
                        source,
                    })?
            }
            Err(e) => report.record(origin, first + line, e, kept),
        }
    }
    *lines_done = first + bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    Ok(())
}

fn load_stix(
    builder: &mut IntelBuilder,
    id: ListId,
    bytes: &[u8],
    origin: &Origin,
    now: &Timestamp,
    report: &mut LoadReport,
) -> Result<(), IntelError> {
    let text = std::str::from_utf8(bytes).map_err(|_| IntelError::StixNotUtf8 {
        origin: origin.clone(),
    })?;
    let contents = stix::parse_bundle(text, now).map_err(|source| IntelError::Stix {
        origin: origin.clone(),
        source,
    })?;
    for (_, indicator) in &contents.indicators {
        builder
            .insert(id, indicator)
            .map_err(|source| IntelError::Build {
                origin: origin.clone(),
                source,
            })?;
    }
    let mut kept = 0;
    for (line, error) in contents.errors {
        report.record(origin, line, error.into(), &mut kept);
    }
    report.revoked += contents.revoked;
    report.expired += contents.expired;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A file ending in `name` (its extension picks the format), removed when the returned
    /// path is dropped.
    fn temp_file(name: &str, contents: &[u8]) -> tempfile::TempPath {
        let mut file = tempfile::Builder::new()
            .prefix("vigil-detection-")
            .suffix(&format!("-{name}"))
            .tempfile()
            .unwrap();
        file.write_all(contents).unwrap();
        file.into_temp_path()
    }

    #[test]
    fn malformed_lines_are_reported_with_file_and_line_and_the_rest_loads() {
        let path = temp_file(
            "domains.txt",
            b"# header\nevil.example\n\nbad..name\nOK.Example.  # trailing comment\nhttp://x/y\n\xff\xfe\n",
        );
        let config = IntelConfig {
            builtin: false,
            lists: vec![ListSource {
                name: "test".into(),
                path: path.to_path_buf(),
                format: ListFormat::PlainText(IndicatorKind::Domain),
                feeds: vec![FindingType::BackdoorCcActivityBDns],
            }],
            trusted_ips: vec![],
        };
        let (intel, report) = load(&config).unwrap();
        assert!(intel.lookup_domain("evil.example").contains("test"));
        assert!(intel.lookup_domain("ok.example").contains("test"));
        assert_eq!(report.malformed_total, 3);
        let lines: Vec<usize> = report.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, vec![4, 6, 7]);
        let message = report.malformed[0].to_string();
        assert!(
            message.starts_with(&format!("{}:4: ", path.display())),
            "{message}"
        );
        assert!(matches!(report.malformed[2].error, EntryError::NotUtf8));
    }

    #[test]
    fn report_is_capped_but_counts_everything() {
        let body: String = (0..250).map(|i| format!("not-an-ip-{i}\n")).collect();
        let path = temp_file("junk-ips.txt", body.as_bytes());
        let config = IntelConfig {
            builtin: false,
            lists: vec![ListSource {
                name: "junk".into(),
                path: path.to_path_buf(),
                format: ListFormat::PlainText(IndicatorKind::Ip),
                feeds: vec![],
            }],
            trusted_ips: vec![],
        };
        let (_, report) = load(&config).unwrap();
        assert_eq!(report.malformed_total, 250);
        assert_eq!(report.malformed.len(), MAX_REPORTED_PER_FILE);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit_with_an_error_naming_the_file() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 4 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
        let origin = Origin::File(PathBuf::from("/etc/vigil/lists/bomb.txt.gz"));
        let err = read_bounded(GzDecoder::new(&bomb[..]), &origin, true, 1 << 20).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("bomb.txt.gz")
                && text.contains("larger than 1048576 bytes once decompressed"),
            "{text}"
        );
        // Under the limit it reads whole.
        let whole = read_bounded(GzDecoder::new(&bomb[..]), &origin, true, 8 << 20).unwrap();
        assert_eq!(whole.len(), 4 << 20);
    }

    #[test]
    fn gzip_stix_and_trusted_files_load() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"192.0.2.0/24\n2001:db8::1\n").unwrap();
        let ips = temp_file("ips.txt.gz", &gz.finish().unwrap());
        let stix = temp_file(
            "bundle.json",
            br#"{"type":"bundle","id":"bundle--x","objects":[
{"type":"indicator","id":"indicator--a","pattern_type":"stix","pattern":"[domain-name:value = 'stix.example']"},
{"type":"indicator","id":"indicator--b","pattern":"[url:value = 'http://x']"}]}"#,
        );
        let trusted = temp_file("trusted.txt", b"192.0.2.128/25\nnonsense\n");
        let config: IntelConfig = serde_json::from_value(serde_json::json!({
            "builtin": false,
            "lists": [
                {"name": "ips", "path": &*ips, "format": "ip", "feeds": ["Backdoor:Runtime/C&CActivity.B"]},
                {"name": "stix", "path": &*stix, "format": "stix"}
            ],
            "trusted_ips": [{"name": "office", "path": &*trusted}]
        }))
        .unwrap();
        let (intel, report) = load(&config).unwrap();
        assert!(
            intel
                .lookup_ip("192.0.2.5".parse().unwrap())
                .contains("ips")
        );
        assert!(intel.lookup_ip("192.0.2.200".parse().unwrap()).is_empty());
        assert!(intel.is_trusted_ip("192.0.2.200".parse().unwrap()));
        assert!(
            intel
                .lookup_ip("2001:db8::1".parse().unwrap())
                .contains("ips")
        );
        assert!(intel.lookup_domain("a.stix.example").contains("stix"));
        assert_eq!(report.malformed_total, 2);
        assert!(report.malformed.iter().any(|m| m.line == 3));
        assert!(report.malformed.iter().any(|m| m.line == 2));
    }

    #[test]
    fn missing_file_fails_the_load_naming_it() {
        let config = IntelConfig {
            builtin: false,
            lists: vec![ListSource {
                name: "gone".into(),
                path: "/nonexistent/vigil/list.txt".into(),
                format: ListFormat::PlainText(IndicatorKind::Domain),
                feeds: vec![],
            }],
            trusted_ips: vec![],
        };
        let err = load(&config).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/vigil/list.txt"),
            "{err}"
        );
    }

    /// The snapshot's own accounting of its heap for the built-in lists: at least the bytes of
    /// the indicators themselves, and under a bound about 7% over what it takes (11.2 MiB; the
    /// hash maps it replaced took about 26 MiB).
    #[test]
    fn builtin_snapshot_heap_stays_under_its_bound() {
        let (intel, _) = load(&IntelConfig::default()).unwrap();
        let (networks, domains, hashes) = intel.distinct_indicators();
        let mut names = std::collections::HashSet::new();
        for list in BUILTIN_LISTS
            .iter()
            .filter(|l| l.kind == IndicatorKind::Domain)
        {
            let text = gunzip(list.gzip, &Origin::Builtin(list.file)).unwrap();
            for (_, name) in lines(&text) {
                names.insert(name.unwrap().to_owned());
            }
        }
        names.extend(GUARDDUTY_TESTER_LISTS.iter().map(|l| l.domain.to_owned()));
        assert_eq!(names.len(), domains);
        let payload = names.iter().map(String::len).sum::<usize>() + networks * 4 + hashes * 32;
        let heap = intel.heap_bytes();
        assert!(
            heap >= payload,
            "{heap} bytes for {payload} bytes of indicators"
        );
        assert!(heap < 12 << 20, "{heap} bytes");
    }

    /// A gzip bomb streamed stops at the limit with an error naming the file, and quickly even
    /// without a newline in it (only the bytes just read are searched for one).
    #[test]
    fn a_streamed_gzip_bomb_stops_at_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'a'; 4 << 20]).unwrap();
        let bomb = gz.finish().unwrap();
        let origin = Origin::File(PathBuf::from("/etc/vigil/lists/bomb.txt.gz"));
        let mut builder = IntelBuilder::new();
        let format = ListFormat::PlainText(IndicatorKind::Domain);
        let id = builder.add_list("l", format, vec![], "t").unwrap();
        let target = (id, IndicatorKind::Domain);
        let mut report = LoadReport::default();
        let err = load_gzip_lines(&mut builder, target, &bomb, &origin, &mut report, 1 << 20)
            .unwrap_err();
        assert!(
            matches!(
                &err,
                IntelError::TooLarge {
                    limit: 1_048_576,
                    compressed: true,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("bomb.txt.gz"), "{err}");
    }

    /// A gzip list loads the same streamed as whole: indicators, line numbers of malformed
    /// lines (before, across and after chunk boundaries, after a line longer than a chunk),
    /// and a last line without a newline.
    #[test]
    fn streamed_gzip_lists_load_like_whole_ones() {
        let mut text = Vec::new();
        for i in 0..60_000 {
            match i % 997 {
                0 => text.extend_from_slice(b"not a domain\r\n"),
                1 => text.extend_from_slice(b"# comment\n\n"),
                _ => text.extend_from_slice(format!("host-{i}.example  # c\r\n").as_bytes()),
            }
            if i == 30_000 {
                text.extend_from_slice(&vec![b'#'; STREAM_CHUNK * 2 + 7]);
                text.extend_from_slice(b"\nlong..bad\n");
            }
        }
        text.extend_from_slice(b"last.example");
        assert!(text.len() > STREAM_CHUNK * 5);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gzip = gz.finish().unwrap();
        let origin = Origin::Builtin("test.txt.gz");
        let load_with = |streamed: bool| {
            let mut builder = IntelBuilder::new();
            let format = ListFormat::PlainText(IndicatorKind::Domain);
            let id = builder.add_list("l", format, vec![], "t").unwrap();
            let mut report = LoadReport::default();
            let kind = IndicatorKind::Domain;
            if streamed {
                load_plain_text_gzip(&mut builder, id, kind, &gzip, &origin, &mut report)
            } else {
                load_plain_text(&mut builder, id, kind, &text, &origin, &mut report)
            }
            .unwrap();
            (builder.build(), report)
        };
        let (whole, whole_report) = load_with(false);
        let (streamed, streamed_report) = load_with(true);
        assert_eq!(streamed_report.malformed, whole_report.malformed);
        assert_eq!(streamed_report.malformed_total, 62);
        assert_eq!(streamed.distinct_indicators(), whole.distinct_indicators());
        assert_eq!(streamed.lists()[0].indicators, whole.lists()[0].indicators);
        for name in ["host-2.example", "a.host-59999.example", "last.example"] {
            assert!(streamed.lookup_domain(name).contains("l"), "{name}");
        }
        assert!(streamed.lookup_domain("host-997.example").is_empty());
    }

    /// The built-in lists as the obvious storage holds them (what the snapshot replaced):
    /// hash maps from a normalised name, an address under each prefix length, and a digest, to
    /// the mask of the lists that hold it.
    #[derive(Default)]
    struct Reference {
        domains: std::collections::HashMap<String, u64>,
        /// (IPv6, prefix length, network address) -> lists.
        networks: std::collections::HashMap<(bool, u8, u128), u64>,
        prefixes: std::collections::BTreeSet<(bool, u8)>,
        digests: std::collections::HashMap<[u8; 32], u64>,
        /// Every network as listed, to query around its edges.
        listed_networks: Vec<IpNet>,
    }

    fn ip_key(ip: std::net::IpAddr) -> (bool, u128) {
        match ip {
            std::net::IpAddr::V4(a) => (false, u128::from(u32::from(a))),
            std::net::IpAddr::V6(a) => (true, u128::from(a)),
        }
    }

    fn prefix_mask(v6: bool, prefix: u8) -> u128 {
        let bits = if v6 { 128 } else { 32 };
        let host = bits - u32::from(prefix);
        let all = if v6 { u128::MAX } else { u128::from(u32::MAX) };
        all.checked_shr(host).map_or(0, |m| m << host) & all
    }

    impl Reference {
        fn builtin(intel: &ThreatIntel) -> Self {
            let mut r = Self::default();
            for list in GUARDDUTY_TESTER_LISTS {
                let index = intel.lists().iter().position(|l| l.name == list.name);
                *r.domains.entry(list.domain.to_owned()).or_default() |= 1u64 << index.unwrap();
            }
            for list in BUILTIN_LISTS {
                let index = intel.lists().iter().position(|l| l.name == list.name);
                let bit = 1u64 << index.unwrap();
                let text = gunzip(list.gzip, &Origin::Builtin(list.file)).unwrap();
                for (_, line) in lines(&text) {
                    match Indicator::parse(list.kind, line.unwrap()).unwrap() {
                        Indicator::Domain(name) => {
                            *r.domains.entry(name.into_owned()).or_default() |= bit;
                        }
                        Indicator::Ip(net) => {
                            let (v6, addr) = ip_key(net.addr());
                            *r.networks.entry((v6, net.prefix(), addr)).or_default() |= bit;
                            r.prefixes.insert((v6, net.prefix()));
                            r.listed_networks.push(net);
                        }
                        Indicator::Sha256(digest) => *r.digests.entry(digest).or_default() |= bit,
                    }
                }
            }
            r
        }

        /// What `lookup_domain` answers: the name and each parent domain, after trimming,
        /// one trailing dot off and lowercasing.
        fn domain(&self, query: &str) -> u64 {
            let name = query.trim();
            let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
            if name.is_empty() || name.len() > crate::indicator::MAX_DOMAIN_LEN {
                return 0;
            }
            let mut mask = self.domains.get(&name).copied().unwrap_or(0);
            for (i, b) in name.bytes().enumerate() {
                if b == b'.' {
                    mask |= self.domains.get(&name[i + 1..]).copied().unwrap_or(0);
                }
            }
            mask
        }

        /// What `lookup_ip` answers: every listed network that holds the address (an
        /// IPv4-mapped IPv6 address as its IPv4 address).
        fn ip(&self, ip: std::net::IpAddr) -> u64 {
            let full = if ip.is_ipv4() { 32 } else { 128 };
            let (v6, addr) = ip_key(IpNet::new(ip, full).unwrap().addr());
            self.prefixes
                .iter()
                .filter(|&&(family, _)| family == v6)
                .filter_map(|&(_, prefix)| {
                    let network = addr & prefix_mask(v6, prefix);
                    self.networks.get(&(v6, prefix, network))
                })
                .fold(0, |mask, lists| mask | lists)
        }
    }

    /// The compact snapshot answers exactly as the hash maps it replaced, for every indicator
    /// of the built-in lists and the queries around them: each listed name as given, in upper
    /// case, with a trailing dot, as a parent of a subdomain, cut to its own parent, and with
    /// a byte changed; each network at its first and last address, just outside them, and
    /// IPv4 in its IPv4-mapped IPv6 form; each digest and a changed one.
    #[test]
    fn builtin_snapshot_answers_as_hash_maps_of_its_lists() {
        let (intel, _) = load(&IntelConfig::default()).unwrap();
        let reference = Reference::builtin(&intel);
        let (networks, domains, hashes) = intel.distinct_indicators();
        assert_eq!(domains, reference.domains.len());
        assert_eq!(hashes, reference.digests.len());
        assert!(networks > 0 && networks <= reference.listed_networks.len());
        let check_domain = |query: &str| {
            assert_eq!(
                intel.lookup_domain(query).mask(),
                reference.domain(query),
                "{query:?}"
            );
        };
        let mut names: Vec<&String> = reference.domains.keys().collect();
        names.sort_unstable();
        for (i, name) in names.iter().enumerate() {
            check_domain(name);
            if i % 4 != 0 {
                continue;
            }
            check_domain(&name.to_ascii_uppercase());
            check_domain(&format!("{name}."));
            check_domain(&format!(" Www.{name}. "));
            if let Some((_, parent)) = name.split_once('.') {
                check_domain(parent);
            }
            let mut changed = name.as_bytes().to_vec();
            let at = i % changed.len();
            changed[at] = if changed[at] == b'q' { b'z' } else { b'q' };
            check_domain(std::str::from_utf8(&changed).unwrap());
            check_domain(&name[..name.len() - 1]);
        }
        for query in ["", ".", "..", "com", "COM.", "a..com", &"a".repeat(300)] {
            check_domain(query);
        }
        for net in &reference.listed_networks {
            let (v6, first) = ip_key(net.addr());
            let last = first | !prefix_mask(v6, net.prefix()) & prefix_mask(v6, 0);
            for addr in [first, last, first.wrapping_sub(1), last.wrapping_add(1)] {
                let ip = if v6 {
                    std::net::IpAddr::V6(std::net::Ipv6Addr::from(addr))
                } else if let Ok(a) = u32::try_from(addr) {
                    std::net::IpAddr::V4(std::net::Ipv4Addr::from(a))
                } else {
                    continue;
                };
                assert_eq!(intel.lookup_ip(ip).mask(), reference.ip(ip), "{ip} ({net})");
                if let std::net::IpAddr::V4(a) = ip {
                    let mapped = std::net::IpAddr::V6(a.to_ipv6_mapped());
                    assert_eq!(intel.lookup_ip(mapped).mask(), reference.ip(ip), "{mapped}");
                }
            }
        }
        for (digest, &lists) in &reference.digests {
            assert_eq!(intel.lookup_sha256(digest).mask(), lists);
            let mut changed = *digest;
            changed[31] ^= 1;
            let expected = reference.digests.get(&changed).copied().unwrap_or(0);
            assert_eq!(intel.lookup_sha256(&changed).mask(), expected);
        }
    }

    /// Each of the GuardDuty tester's domains raises the type the tester expects, a subdomain
    /// too; the ones under AWS's C&C test domain raise C&C beside it; no built-in list holds
    /// them.
    #[test]
    fn the_guardduty_tester_domains_raise_what_the_tester_expects() {
        let (intel, _) = load(&IntelConfig::default()).unwrap();
        let c2 = FindingType::BackdoorCcActivityBDns;
        for list in GUARDDUTY_TESTER_LISTS {
            for query in [
                list.domain.to_owned(),
                format!("x.{}.", list.domain.to_uppercase()),
            ] {
                let mut types: Vec<_> = intel.lookup_domain(&query).finding_types().collect();
                types.sort();
                let mut expected = vec![list.feeds];
                if list.domain.ends_with(".guarddutyc2activityb.com") {
                    expected.push(c2);
                }
                expected.sort();
                assert_eq!(types, expected, "{query}");
            }
        }
        let types: Vec<_> = intel
            .lookup_domain("c2.guarddutyc2activityb.com")
            .finding_types()
            .collect();
        assert_eq!(types, vec![c2]);
        assert!(intel.lookup_domain("guarddutyc2activityb.org").is_empty());
        let (intel, _) = load(&IntelConfig {
            builtin: false,
            ..IntelConfig::default()
        })
        .unwrap();
        assert!(
            intel
                .lookup_domain("c2.guarddutyc2activityb.com")
                .is_empty()
        );
    }

    #[test]
    fn builtin_lists_load_without_malformed_lines() {
        let (intel, report) = load(&IntelConfig::default()).unwrap();
        assert_eq!(report.malformed_total, 0, "{:?}", report.malformed);
        assert_eq!(
            intel.lists().len(),
            BUILTIN_LISTS.len() + GUARDDUTY_TESTER_LISTS.len()
        );
        // Header counts of the shipped files (see detection/data/README.md).
        let count = |name: &str| {
            intel
                .lists()
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.indicators)
        };
        assert_eq!(count("c2-ips"), Some(158_338));
        assert_eq!(count("phishing-domains"), Some(192_750));
        assert_eq!(count("malware-sha256"), Some(5_358));
        assert!(
            intel
                .lookup_domain("www.2miners.com")
                .contains("crypto-domains")
        );
        let m = intel.lookup_ip("1.0.0.5".parse().unwrap());
        assert!(m.contains("c2-ips"));
        assert!(
            m.finding_types()
                .any(|t| t == FindingType::BackdoorCcActivityB)
        );
    }
}
