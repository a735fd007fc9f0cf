//! The bytes of a syslog delivery: an RFC 5424 message whose MSG is a JSON document or a CEF
//! event, framed by octet counting (RFC 6587 section 3.4.1, the framing RFC 5425 requires
//! over TLS). Pure functions.

use serde::{Deserialize, Serialize};
use vigil_crds::finding::{ConnectionDirection, Finding, SeverityLabel};

use crate::format::known_time;

/// Syslog facility (RFC 5424 section 6.2.1).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    /// 0: kernel messages.
    Kern,
    /// 1: user-level messages.
    User,
    /// 3: system daemons.
    Daemon,
    /// 4: security/authorization messages (the default: findings are security events).
    #[default]
    Auth,
    /// 10: security/authorization messages, private.
    Authpriv,
    /// 13: log audit.
    Audit,
    /// 14: log alert.
    Alert,
    /// 16: local use 0.
    Local0,
    /// 17: local use 1.
    Local1,
    /// 18: local use 2.
    Local2,
    /// 19: local use 3.
    Local3,
    /// 20: local use 4.
    Local4,
    /// 21: local use 5.
    Local5,
    /// 22: local use 6.
    Local6,
    /// 23: local use 7.
    Local7,
}

impl Facility {
    /// The numeric code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Kern => 0,
            Self::User => 1,
            Self::Daemon => 3,
            Self::Auth => 4,
            Self::Authpriv => 10,
            Self::Audit => 13,
            Self::Alert => 14,
            Self::Local0 => 16,
            Self::Local1 => 17,
            Self::Local2 => 18,
            Self::Local3 => 19,
            Self::Local4 => 20,
            Self::Local5 => 21,
            Self::Local6 => 22,
            Self::Local7 => 23,
        }
    }
}

/// What the MSG part carries.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// The finding rendered in the sink's `format`, as one line of JSON.
    #[default]
    Json,
    /// ArcSight Common Event Format.
    Cef,
}

/// Syslog severity of a finding: Low notice (5), Medium warning (4), High error (3),
/// Critical critical (2).
pub const fn severity_code(label: SeverityLabel) -> u8 {
    match label {
        SeverityLabel::Low => 5,
        SeverityLabel::Medium => 4,
        SeverityLabel::High => 3,
        SeverityLabel::Critical => 2,
    }
}

/// The RFC 5424 `APP-NAME`.
pub const APP_NAME: &str = "vigil";
/// The RFC 5424 `MSGID` of a finding.
pub const MSG_ID: &str = "finding";

/// An RFC 5424 header field: printable US-ASCII without spaces, at most `max` characters, or
/// the NILVALUE `-` when nothing is left.
fn header_field(value: &str, max: usize) -> String {
    let cleaned: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if cleaned.is_empty() {
        "-".to_owned()
    } else {
        cleaned
    }
}

/// One RFC 5424 message (no framing): `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`,
/// the time being the finding's `updatedAt` and the host the finding's host. MSG is written
/// without a BOM: JSON and CEF readers take it as it is. `procid` is the agent's pid.
pub fn message(finding: &Finding, facility: Facility, procid: u32, msg: &str) -> String {
    let pri = u16::from(facility.code()) * 8 + u16::from(severity_code(finding.severity_label));
    let timestamp = known_time(&finding.updated_at)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or_else(|| "-".to_owned());
    // One line: a JSON document has no raw newline; CEF escapes them.
    let msg = msg.replace(['\n', '\r'], " ");
    format!(
        "<{pri}>1 {timestamp} {} {APP_NAME} {procid} {MSG_ID} - {msg}",
        header_field(&finding.resource.host.hostname, 255)
    )
}

/// Octet-counting framing: `MSG-LEN SP SYSLOG-MSG`.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message.as_bytes());
    out
}

/// A CEF header field: `\` and `|` escaped, line breaks as spaces.
fn cef_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A CEF extension value: `\` and `=` escaped, line breaks as `\n` and `\r`.
fn cef_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The finding as a CEF event:
/// `CEF:0|Vigil|Vigil|<version>|<finding type>|<title>|<severity 1-10>|<extension>`.
pub fn cef(finding: &Finding) -> String {
    let mut ext: Vec<(&str, String)> = Vec::new();
    let ms = |t| known_time(t).map(|t| t.as_millisecond().to_string());
    ext.extend(ms(&finding.updated_at).map(|v| ("rt", v)));
    ext.extend(ms(&finding.event_first_seen).map(|v| ("start", v)));
    ext.extend(ms(&finding.event_last_seen).map(|v| ("end", v)));
    ext.push(("cnt", finding.count.to_string()));
    ext.push(("externalId", finding.id.clone()));
    ext.push(("cat", finding.finding_type.clone()));
    ext.push(("msg", finding.description.clone()));
    ext.push(("dvchost", finding.resource.host.hostname.clone()));
    ext.push(("cs1Label", "resource".to_owned()));
    ext.push(("cs1", finding.resource.display_name.clone()));
    ext.push(("cs2Label", "resourceRole".to_owned()));
    ext.push((
        "cs2",
        serde_json::to_value(finding.resource_role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    ));
    if let Some(c) = &finding.resource.container {
        ext.push(("cs3Label", "containerId".to_owned()));
        ext.push(("cs3", c.id.clone()));
    }
    if let Some(p) = &finding.process {
        ext.push(("sproc", p.name.clone()));
        ext.push(("spid", p.pid.to_string()));
        if p.uid != vigil_crds::finding::UNKNOWN_ID {
            ext.push(("suid", p.uid.to_string()));
        }
        if let Some(user) = &p.user {
            ext.push(("suser", user.clone()));
        }
    }
    if let Some(cmd) = &finding.context.command_line_example {
        ext.push(("cs4Label", "commandLine".to_owned()));
        ext.push(("cs4", cmd.clone()));
    }
    if let Some(path) = &finding.context.file_path {
        ext.push(("filePath", path.clone()));
    }
    if let Some(n) = &finding.network {
        let local = (!n.local_ip.is_empty()).then(|| n.local_ip.clone());
        let local_port = (n.local_port != 0).then(|| n.local_port.to_string());
        let remote_port = Some(n.remote_port.to_string());
        let (src, spt, dst, dpt, direction) = match n.connection_direction {
            ConnectionDirection::Outbound => (
                local,
                local_port,
                Some(n.remote_ip.clone()),
                remote_port,
                "1",
            ),
            ConnectionDirection::Inbound => (
                Some(n.remote_ip.clone()),
                remote_port,
                local,
                local_port,
                "0",
            ),
        };
        ext.extend(src.map(|v| ("src", v)));
        ext.extend(spt.map(|v| ("spt", v)));
        ext.extend(dst.map(|v| ("dst", v)));
        ext.extend(dpt.map(|v| ("dpt", v)));
        ext.push(("proto", n.protocol.clone()));
        ext.push(("deviceDirection", direction.to_owned()));
        if let Some(domain) = &n.remote_domain {
            ext.push(("dhost", domain.clone()));
        }
    }
    if let Some(d) = &finding.dns {
        ext.push(("dhost", d.domain.clone()));
        ext.push(("proto", d.protocol.clone()));
    }
    if let Some(t) = finding
        .evidence
        .as_ref()
        .and_then(|e| e.threat_intelligence_details.first())
    {
        ext.push(("cs5Label", "threatList".to_owned()));
        ext.push(("cs5", t.threat_list_name.clone()));
        ext.push(("cs6Label", "indicator".to_owned()));
        ext.push(("cs6", t.indicator.clone()));
    }
    if finding.archived {
        ext.push(("act", "archived".to_owned()));
    }
    let extension: Vec<String> = ext
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", cef_value(&v)))
        .collect();
    // CEF severity is an integer 0-10; Vigil's scores are 1.0-10.0.
    let severity = finding.severity.round().clamp(0.0, 10.0);
    format!(
        "CEF:0|Vigil|Vigil|{}|{}|{}|{severity}|{}",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(&finding.finding_type),
        cef_header(&finding.title),
        extension.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testdata;

    #[test]
    fn rfc5424_header_and_priority() {
        let f = testdata::sample();
        let m = message(&f, Facility::Auth, 42, "{\"a\":1}");
        // auth (4) * 8 + warning (4) for Medium.
        assert_eq!(
            m,
            "<36>1 2026-11-27T10:05:00.000000Z node-a vigil 42 finding - {\"a\":1}"
        );
        let mut f = testdata::rule_archived();
        f.resource.host.hostname = "bad host\n".into();
        let m = message(&f, Facility::Local7, 1, "x\ny");
        // local7 (23) * 8 + critical (2).
        assert!(m.starts_with("<186>1 "), "{m}");
        assert!(m.contains(" badhost vigil 1 finding - x y"), "{m}");
        f.resource.host.hostname = " ".into();
        assert!(message(&f, Facility::Kern, 1, "x").contains("Z - vigil"));
    }

    #[test]
    fn octet_counting_counts_bytes_not_characters() {
        assert_eq!(frame("abc"), b"3 abc");
        assert_eq!(frame("é"), "2 é".as_bytes());
        assert_eq!(frame(""), b"0 ");
    }

    #[test]
    fn cef_escapes_header_and_extension_as_the_spec_says() {
        assert_eq!(cef_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(cef_header("a\nb"), "a b");
        assert_eq!(cef_value(r"a=b\c|d"), r"a\=b\\c|d");
        assert_eq!(cef_value("l1\nl2\r"), r"l1\nl2\r");

        let mut f = testdata::network_on_host();
        f.title = "C&C | pipe \\ back".into();
        f.description = "key=value\nsecond line".into();
        let event = cef(&f);
        let want_prefix = format!(
            "CEF:0|Vigil|Vigil|{}|Backdoor:Runtime/C&CActivity.B|C&C \\| pipe \\\\ back|8|",
            env!("CARGO_PKG_VERSION")
        );
        assert!(event.starts_with(&want_prefix), "{event}");
        assert!(
            event.contains(r"msg=key\=value\nsecond line dvchost=node-a"),
            "{event}"
        );
        for want in [
            "dst=203.0.113.7",
            "dpt=4444",
            "proto=TCP",
            "deviceDirection=1",
            "dhost=c2.example.invalid",
            "cs5Label=threatList cs5=c2-ips",
            "cs6=203.0.113.7",
            "cnt=1",
            "rt=1795773600000",
        ] {
            assert!(event.contains(want), "{want} in {event}");
        }
        assert!(!event.contains("src="), "unknown local end: {event}");
        f.process.as_mut().unwrap().uid = vigil_crds::finding::UNKNOWN_ID;
        assert!(!cef(&f).contains("suid="), "unknown uid: {event}");
        assert!(!event.contains('\n'));
    }

    #[test]
    fn cef_of_process_dns_and_archived_findings() {
        let event = cef(&testdata::sample());
        for want in [
            "sproc=curl",
            "spid=4242",
            "suid=1000",
            "suser=app",
            "filePath=/usr/bin/curl",
            "cs3Label=containerId cs3=3b5f0c9e6d2a",
            "cs4=curl -H 'Authorization: Bearer <redacted>' https://example.invalid/x",
            "|5|",
        ] {
            assert!(event.contains(want), "{want} in {event}");
        }
        let event = cef(&testdata::dns_in_container());
        assert!(
            event.contains("dhost=pool.minexmr.example proto=UDP"),
            "{event}"
        );
        let event = cef(&testdata::rule_archived());
        assert!(event.contains("|10|"), "9.5 rounds to 10: {event}");
        assert!(event.ends_with("act=archived"), "{event}");
    }

    #[test]
    fn facilities_and_payloads_parse_from_configuration_names() {
        let f: Facility = serde_json::from_value("local4".into()).unwrap();
        assert_eq!(f.code(), 20);
        assert_eq!(Facility::default().code(), 4);
        let p: Payload = serde_json::from_value("cef".into()).unwrap();
        assert_eq!(p, Payload::Cef);
        assert!(serde_json::from_value::<Payload>("xml".into()).is_err());
    }
}
