//! A DNS message parser (RFC 1035 wire format) for the messages the DNS sensor captures.
//!
//! The agent sees every DNS message a workload sends or receives, keeps at most
//! [`node_agent_common::DNS_PAYLOAD_LEN`] bytes of each, and needs the questions (what was looked
//! up) and the address answers (what it resolved to). The parser therefore:
//! - reads the header, every question, and the answer section; the authority and additional
//!   sections are not needed and are not read;
//! - returns what it parsed with [`DnsMessage::incomplete`] set when the bytes end inside the
//!   answer section (or after at least one complete question), instead of failing;
//! - follows name compression pointers only backwards, each one before the previous, so a
//!   pointer loop cannot make it spin; names are limited to 255 bytes and labels to 63;
//! - builds each name in one `String`, lower-cased, without allocating per label.

use std::{
    borrow::Cow,
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
};

use serde::{Serialize, Serializer};

/// Size of the fixed DNS header.
pub const HEADER_LEN: usize = 12;
/// Longest name on the wire, length bytes and the final zero included (RFC 1035 2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A parsed DNS message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsMessage {
    /// The fixed header.
    pub header: Header,
    /// The question section.
    pub questions: Vec<Question>,
    /// The answer section (as much of it as the bytes held).
    pub answers: Vec<ResourceRecord>,
    /// The bytes ended before every question and answer the header announces was read.
    pub incomplete: bool,
}

/// The DNS header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Header {
    /// Query id, echoed by the answer.
    pub id: u16,
    /// QR: the message is a response.
    pub response: bool,
    /// The kind of query.
    pub opcode: Opcode,
    /// AA: the answer comes from an authoritative server.
    pub authoritative: bool,
    /// TC: the message was truncated by the sender (the client should retry over TCP).
    pub truncated: bool,
    /// RD: the client asked for recursion.
    pub recursion_desired: bool,
    /// RA: the server offers recursion.
    pub recursion_available: bool,
    /// The response code.
    pub rcode: Rcode,
    /// Number of questions announced.
    pub question_count: u16,
    /// Number of answers announced.
    pub answer_count: u16,
    /// Number of authority records announced (not parsed).
    pub authority_count: u16,
    /// Number of additional records announced (not parsed).
    pub additional_count: u16,
}

/// A question: the name looked up and what kind of record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Question {
    /// The name, lower-cased, dot-separated, without the trailing dot (`.` for the root).
    pub name: String,
    /// The record type asked for (see [`qtype_name`]).
    pub qtype: u16,
    /// The class (1 for IN).
    pub qclass: u16,
}

/// A resource record of the answer section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceRecord {
    /// The owner name, lower-cased.
    pub name: String,
    /// The record type (see [`qtype_name`]).
    pub rtype: u16,
    /// The class (1 for IN).
    pub rclass: u16,
    /// Time to live in seconds.
    pub ttl: u32,
    /// The record data.
    pub data: RecordData,
}

/// The data of a resource record; types the agent does not use keep only their size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RecordData {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// The canonical name the owner is an alias of, lower-cased.
    Cname(String),
    /// Any other type.
    Other {
        /// The record type.
        rtype: u16,
        /// Bytes of record data.
        len: u16,
    },
}

/// The operation of a message (header OPCODE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Opcode {
    /// A standard query (0).
    Query,
    /// An inverse query (1, obsolete).
    IQuery,
    /// A server status request (2).
    Status,
    /// A zone change notification (4).
    Notify,
    /// A dynamic update (5).
    Update,
    /// Any other value.
    Other(u8),
}

impl Opcode {
    /// The opcode for the 4-bit header value.
    pub fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Query,
            1 => Self::IQuery,
            2 => Self::Status,
            4 => Self::Notify,
            5 => Self::Update,
            other => Self::Other(other),
        }
    }
}

/// The response code of a message (header RCODE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    /// No error (0).
    NoError,
    /// The server could not interpret the query (1).
    FormErr,
    /// The server failed to process the query (2).
    ServFail,
    /// The name does not exist (3).
    NxDomain,
    /// The server does not support this kind of query (4).
    NotImp,
    /// The server refused, by policy (5).
    Refused,
    /// A name exists when it should not (6).
    YxDomain,
    /// A record set exists when it should not (7).
    YxRrSet,
    /// A record set does not exist when it should (8).
    NxRrSet,
    /// The server is not authoritative for the zone (9).
    NotAuth,
    /// The name is not in the zone (10).
    NotZone,
    /// Any other value.
    Other(u8),
}

impl Rcode {
    /// The response code for the 4-bit header value.
    pub fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::NoError,
            1 => Self::FormErr,
            2 => Self::ServFail,
            3 => Self::NxDomain,
            4 => Self::NotImp,
            5 => Self::Refused,
            6 => Self::YxDomain,
            7 => Self::YxRrSet,
            8 => Self::NxRrSet,
            9 => Self::NotAuth,
            10 => Self::NotZone,
            other => Self::Other(other),
        }
    }

    /// The numeric value.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::NoError => 0,
            Self::FormErr => 1,
            Self::ServFail => 2,
            Self::NxDomain => 3,
            Self::NotImp => 4,
            Self::Refused => 5,
            Self::YxDomain => 6,
            Self::YxRrSet => 7,
            Self::NxRrSet => 8,
            Self::NotAuth => 9,
            Self::NotZone => 10,
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for Rcode {
    /// The mnemonic `dig` prints (`NOERROR`, `NXDOMAIN`, ..., `RCODE12`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::NoError => "NOERROR",
            Self::FormErr => "FORMERR",
            Self::ServFail => "SERVFAIL",
            Self::NxDomain => "NXDOMAIN",
            Self::NotImp => "NOTIMP",
            Self::Refused => "REFUSED",
            Self::YxDomain => "YXDOMAIN",
            Self::YxRrSet => "YXRRSET",
            Self::NxRrSet => "NXRRSET",
            Self::NotAuth => "NOTAUTH",
            Self::NotZone => "NOTZONE",
            Self::Other(value) => return write!(f, "RCODE{value}"),
        };
        f.write_str(name)
    }
}

impl Serialize for Rcode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Common record type numbers.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Canonical name (alias).
    pub const CNAME: u16 = 5;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
}

/// The mnemonic of a record type (`"A"`, `"AAAA"`, ...), or `TYPE<n>` (RFC 3597) for types
/// without one here.
pub fn qtype_name(qtype: u16) -> Cow<'static, str> {
    let name = match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        other => return Cow::Owned(format!("TYPE{other}")),
    };
    Cow::Borrowed(name)
}

/// The section of a message being read when an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The question section.
    Question,
    /// The answer section.
    Answer,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Question => "question",
            Self::Answer => "answer",
        })
    }
}

/// Why a message could not be parsed. Offsets are from the start of the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Fewer bytes than the 12-byte header.
    #[error("DNS message of {len} bytes is shorter than the 12-byte header")]
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The bytes ended before the first question was complete.
    #[error("DNS message ends at byte {len} inside the {section} section (reading byte {offset})")]
    Truncated {
        /// Where the section was being read.
        section: Section,
        /// The offset that was out of range.
        offset: usize,
        /// Bytes available.
        len: usize,
    },
    /// A label length byte uses the reserved `01`/`10` high bits.
    #[error("DNS name has an unsupported label type 0x{byte:02x} at byte {offset}")]
    BadLabelType {
        /// Offset of the length byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// A name is longer than 255 bytes on the wire.
    #[error("DNS name starting at byte {offset} is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong {
        /// Offset where the name starts.
        offset: usize,
    },
    /// A compression pointer does not point before the data that led to it (which is how a
    /// loop would look), or points outside the message.
    #[error(
        "DNS compression pointer at byte {offset} points to byte {target}, not before byte \
         {limit} (a pointer loop or a forward pointer)"
    )]
    BadPointer {
        /// Offset of the pointer.
        offset: usize,
        /// Where it points.
        target: usize,
        /// The first offset it was required to be below.
        limit: usize,
    },
    /// An A or AAAA record whose data is not 4 or 16 bytes.
    #[error("DNS {} record at byte {offset} has {len} bytes of data, expected {expected}", qtype_name(*rtype))]
    BadRecordLength {
        /// Offset of the record data.
        offset: usize,
        /// The record type.
        rtype: u16,
        /// Length found.
        len: u16,
        /// Length required.
        expected: u16,
    },
    /// A CNAME whose name does not end where its data length says.
    #[error(
        "DNS CNAME record at byte {offset} has a name of {name_len} bytes in {len} bytes of data"
    )]
    CnameLengthMismatch {
        /// Offset of the record data.
        offset: usize,
        /// The data length the record announces.
        len: u16,
        /// Bytes the name took.
        name_len: usize,
    },
}

/// Parses a DNS message (UDP payload, or a TCP message after [`strip_tcp_length_prefix`]).
///
/// When the bytes end inside the answer section, or after at least one complete question,
/// the records read so far are returned with `incomplete: true`.
pub fn parse(bytes: &[u8]) -> Result<DnsMessage, DnsError> {
    if bytes.len() < HEADER_LEN {
        return Err(DnsError::TooShort { len: bytes.len() });
    }
    let header = parse_header(bytes);
    let mut reader = Reader {
        bytes,
        pos: HEADER_LEN,
    };
    let mut message = DnsMessage {
        header,
        // Every question takes at least 5 bytes and every answer 11: bound the reservation
        // by what the bytes could hold, not by the counts a hostile header announces.
        questions: Vec::with_capacity(usize::from(header.question_count).min(bytes.len() / 5)),
        answers: Vec::with_capacity(usize::from(header.answer_count).min(bytes.len() / 11)),
        incomplete: false,
    };

    for _ in 0..header.question_count {
        match reader.question() {
            Ok(q) => message.questions.push(q),
            Err(Step::Ended { offset }) => {
                if message.questions.is_empty() {
                    return Err(DnsError::Truncated {
                        section: Section::Question,
                        offset,
                        len: bytes.len(),
                    });
                }
                message.incomplete = true;
                return Ok(message);
            }
            Err(Step::Invalid(e)) => return Err(e),
        }
    }
    for _ in 0..header.answer_count {
        match reader.record() {
            Ok(rr) => message.answers.push(rr),
            Err(Step::Ended { .. }) => {
                message.incomplete = true;
                return Ok(message);
            }
            Err(Step::Invalid(e)) => return Err(e),
        }
    }
    Ok(message)
}

/// The DNS message inside a DNS-over-TCP segment: skips the two-byte length prefix and
/// stops at the length it announces (bytes after it belong to the next message). When fewer
/// bytes than announced are present (the capture was cut), returns those that are. `None`
/// when there is no prefix or it announces an empty message.
pub fn strip_tcp_length_prefix(bytes: &[u8]) -> Option<&[u8]> {
    let (prefix, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*prefix));
    if len == 0 {
        return None;
    }
    Some(&rest[..len.min(rest.len())])
}

fn parse_header(bytes: &[u8]) -> Header {
    let word = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    let flags = word(2);
    Header {
        id: word(0),
        response: flags & 0x8000 != 0,
        opcode: Opcode::from_u8(((flags >> 11) & 0xf) as u8),
        authoritative: flags & 0x0400 != 0,
        truncated: flags & 0x0200 != 0,
        recursion_desired: flags & 0x0100 != 0,
        recursion_available: flags & 0x0080 != 0,
        rcode: Rcode::from_u8((flags & 0xf) as u8),
        question_count: word(4),
        answer_count: word(6),
        authority_count: word(8),
        additional_count: word(10),
    }
}

/// Why a step of the reader stopped: the bytes ran out (which the caller may accept), or
/// the message is malformed.
enum Step {
    Ended { offset: usize },
    Invalid(DnsError),
}

impl From<DnsError> for Step {
    fn from(e: DnsError) -> Self {
        Self::Invalid(e)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8_at(&self, offset: usize) -> Result<u8, Step> {
        self.bytes
            .get(offset)
            .copied()
            .ok_or(Step::Ended { offset })
    }

    fn u16(&mut self) -> Result<u16, Step> {
        let v = u16::from_be_bytes([self.u8_at(self.pos)?, self.u8_at(self.pos + 1)?]);
        self.pos += 2;
        Ok(v)
    }

    fn u32(&mut self) -> Result<u32, Step> {
        let hi = self.u16()?;
        let lo = self.u16()?;
        Ok(u32::from(hi) << 16 | u32::from(lo))
    }

    fn question(&mut self) -> Result<Question, Step> {
        let name = self.name()?;
        let qtype = self.u16()?;
        let qclass = self.u16()?;
        Ok(Question {
            name,
            qtype,
            qclass,
        })
    }

    fn record(&mut self) -> Result<ResourceRecord, Step> {
        let name = self.name()?;
        let rtype = self.u16()?;
        let rclass = self.u16()?;
        let ttl = self.u32()?;
        let rdlen = self.u16()?;
        let start = self.pos;
        let end = start + usize::from(rdlen);
        if end > self.bytes.len() {
            return Err(Step::Ended { offset: end - 1 });
        }
        let data =
            match rtype {
                rtype::A => {
                    let octets: [u8; 4] = self.bytes[start..end].try_into().map_err(|_| {
                        DnsError::BadRecordLength {
                            offset: start,
                            rtype,
                            len: rdlen,
                            expected: 4,
                        }
                    })?;
                    RecordData::A(Ipv4Addr::from(octets))
                }
                rtype::AAAA => {
                    let octets: [u8; 16] = self.bytes[start..end].try_into().map_err(|_| {
                        DnsError::BadRecordLength {
                            offset: start,
                            rtype,
                            len: rdlen,
                            expected: 16,
                        }
                    })?;
                    RecordData::Aaaa(Ipv6Addr::from(octets))
                }
                rtype::CNAME => {
                    let target = self.name()?;
                    if self.pos != end {
                        return Err(Step::Invalid(DnsError::CnameLengthMismatch {
                            offset: start,
                            len: rdlen,
                            name_len: self.pos - start,
                        }));
                    }
                    RecordData::Cname(target)
                }
                other => RecordData::Other {
                    rtype: other,
                    len: rdlen,
                },
            };
        self.pos = end;
        Ok(ResourceRecord {
            name,
            rtype,
            rclass,
            ttl,
            data,
        })
    }

    /// Reads a possibly compressed name at the current position and moves past it.
    fn name(&mut self) -> Result<String, Step> {
        let start = self.pos;
        let mut out = String::with_capacity(32);
        // Bytes the name takes on the wire, as if uncompressed (length bytes + final zero).
        let mut wire_len = 1usize;
        let mut cursor = start;
        // Every pointer must point before `limit`, the start of the stretch of labels that
        // led to it; positions strictly decrease with each jump, so there can be no loop.
        let mut limit = start;
        // Where the reader continues once the name is read: after the first pointer, or
        // after the terminating zero when there is none.
        let mut resume = None;
        loop {
            let len = self.u8_at(cursor)?;
            match len & 0xc0 {
                0x00 => {
                    let len = usize::from(len);
                    if len == 0 {
                        self.pos = resume.unwrap_or(cursor + 1);
                        if out.is_empty() {
                            out.push('.');
                        }
                        return Ok(out);
                    }
                    // Labels are at most 63 bytes by construction (six bits of length).
                    debug_assert!(len <= MAX_LABEL_LEN);
                    wire_len += len + 1;
                    if wire_len > MAX_NAME_LEN {
                        return Err(DnsError::NameTooLong { offset: start }.into());
                    }
                    let label =
                        self.bytes
                            .get(cursor + 1..cursor + 1 + len)
                            .ok_or(Step::Ended {
                                offset: cursor + len,
                            })?;
                    if !out.is_empty() {
                        out.push('.');
                    }
                    push_label(&mut out, label);
                    cursor += 1 + len;
                }
                0xc0 => {
                    let low = self.u8_at(cursor + 1)?;
                    let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                    if target >= limit {
                        return Err(DnsError::BadPointer {
                            offset: cursor,
                            target,
                            limit,
                        }
                        .into());
                    }
                    if resume.is_none() {
                        resume = Some(cursor + 2);
                    }
                    limit = target;
                    cursor = target;
                }
                _ => {
                    return Err(DnsError::BadLabelType {
                        offset: cursor,
                        byte: len,
                    }
                    .into());
                }
            }
        }
    }
}

/// Appends a label in presentation form: lower-cased, with bytes that are not printable
/// ASCII, and the dot and backslash, escaped as `\DDD` (RFC 4343), so the name string is
/// unambiguous and safe to log.
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'A'..=b'Z' => out.push(char::from(b.to_ascii_lowercase())),
            b'.' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7e => out.push(char::from(b)),
            _ => {
                out.push('\\');
                out.push(char::from(b'0' + b / 100));
                out.push(char::from(b'0' + (b / 10) % 10));
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds real DNS messages for the tests, with optional compression.
    struct Builder {
        bytes: Vec<u8>,
        qd: u16,
        an: u16,
    }

    impl Builder {
        fn new(id: u16, flags: u16) -> Self {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.extend_from_slice(&flags.to_be_bytes());
            bytes.extend_from_slice(&[0; 8]);
            Self {
                bytes,
                qd: 0,
                an: 0,
            }
        }

        fn query(id: u16) -> Self {
            Self::new(id, 0x0100)
        }

        fn response(id: u16, rcode: u8) -> Self {
            Self::new(id, 0x8180 | u16::from(rcode))
        }

        /// Writes a name uncompressed and returns its offset.
        fn name(&mut self, name: &str) -> usize {
            let at = self.bytes.len();
            for label in name.split('.').filter(|l| !l.is_empty()) {
                self.bytes.push(label.len() as u8);
                self.bytes.extend_from_slice(label.as_bytes());
            }
            self.bytes.push(0);
            at
        }

        fn pointer(&mut self, target: usize) {
            self.bytes
                .extend_from_slice(&(0xc000 | target as u16).to_be_bytes());
        }

        fn question(mut self, name: &str, qtype: u16) -> Self {
            self.name(name);
            self.bytes.extend_from_slice(&qtype.to_be_bytes());
            self.bytes.extend_from_slice(&1u16.to_be_bytes());
            self.qd += 1;
            self
        }

        fn record_head(&mut self, rtype: u16, ttl: u32, rdlen: u16) {
            self.bytes.extend_from_slice(&rtype.to_be_bytes());
            self.bytes.extend_from_slice(&1u16.to_be_bytes());
            self.bytes.extend_from_slice(&ttl.to_be_bytes());
            self.bytes.extend_from_slice(&rdlen.to_be_bytes());
            self.an += 1;
        }

        /// An answer whose owner is a pointer to `owner_at`.
        fn answer_ptr(mut self, owner_at: usize, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
            self.pointer(owner_at);
            self.record_head(rtype, ttl, rdata.len() as u16);
            self.bytes.extend_from_slice(rdata);
            self
        }

        fn answer(mut self, owner: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
            self.name(owner);
            self.record_head(rtype, ttl, rdata.len() as u16);
            self.bytes.extend_from_slice(rdata);
            self
        }

        /// A CNAME answer, owner and target written uncompressed; returns the target offset.
        fn cname(mut self, owner: &str, target: &str) -> (Self, usize) {
            self.name(owner);
            let encoded_len = target.split('.').filter(|l| !l.is_empty()).count()
                + target.replace('.', "").len()
                + 1;
            self.record_head(rtype::CNAME, 60, encoded_len as u16);
            let at = self.name(target);
            (self, at)
        }

        fn build(mut self) -> Vec<u8> {
            self.bytes[4..6].copy_from_slice(&self.qd.to_be_bytes());
            self.bytes[6..8].copy_from_slice(&self.an.to_be_bytes());
            self.bytes
        }
    }

    #[test]
    fn parses_a_query() {
        let msg = Builder::query(0x1234)
            .question("WWW.Example.COM", rtype::A)
            .build();
        let m = parse(&msg).expect("parse");
        assert_eq!(m.header.id, 0x1234);
        assert!(!m.header.response);
        assert!(m.header.recursion_desired);
        assert!(!m.header.recursion_available);
        assert_eq!(m.header.opcode, Opcode::Query);
        assert_eq!(m.header.rcode, Rcode::NoError);
        assert_eq!(
            m.questions,
            vec![Question {
                name: "www.example.com".into(),
                qtype: 1,
                qclass: 1
            }]
        );
        assert!(m.answers.is_empty());
        assert!(!m.incomplete);
    }

    #[test]
    fn parses_a_and_aaaa_answers_with_compression() {
        let msg = Builder::response(7, 0)
            .question("example.com", rtype::AAAA)
            .answer_ptr(12, rtype::A, 300, &[93, 184, 216, 34])
            .answer_ptr(
                12,
                rtype::AAAA,
                60,
                &"2606:2800:220:1:248:1893:25c8:1946"
                    .parse::<Ipv6Addr>()
                    .expect("addr")
                    .octets(),
            )
            .build();
        let m = parse(&msg).expect("parse");
        assert!(m.header.response);
        assert!(m.header.recursion_available);
        assert_eq!(m.questions[0].qtype, rtype::AAAA);
        assert_eq!(m.answers.len(), 2);
        assert_eq!(m.answers[0].name, "example.com");
        assert_eq!(m.answers[0].ttl, 300);
        assert_eq!(
            m.answers[0].data,
            RecordData::A(Ipv4Addr::new(93, 184, 216, 34))
        );
        assert_eq!(m.answers[1].name, "example.com");
        assert_eq!(
            m.answers[1].data,
            RecordData::Aaaa("2606:2800:220:1:248:1893:25c8:1946".parse().expect("addr"))
        );
        assert!(!m.incomplete);
    }

    #[test]
    fn follows_a_cname_chain() {
        let b = Builder::response(9, 0).question("www.shop.test", rtype::A);
        let (b, first) = b.cname("www.shop.test", "edge.CDN.test");
        // The second CNAME's owner is a pointer to the first target.
        let mut b = b;
        b.pointer(first);
        let encoded = [5u8, b'c', b'a', b'c', b'h', b'e', 0xc0, (first + 5) as u8];
        b.record_head(rtype::CNAME, 30, encoded.len() as u16);
        let second = b.bytes.len();
        b.bytes.extend_from_slice(&encoded);
        let b = b.answer_ptr(second, rtype::A, 20, &[10, 0, 0, 7]);
        let m = parse(&b.build()).expect("parse");
        assert_eq!(m.answers.len(), 3);
        assert_eq!(m.answers[0].name, "www.shop.test");
        assert_eq!(m.answers[0].data, RecordData::Cname("edge.cdn.test".into()));
        assert_eq!(m.answers[1].name, "edge.cdn.test");
        assert_eq!(
            m.answers[1].data,
            RecordData::Cname("cache.cdn.test".into())
        );
        assert_eq!(m.answers[2].name, "cache.cdn.test");
        assert_eq!(m.answers[2].data, RecordData::A(Ipv4Addr::new(10, 0, 0, 7)));
    }

    #[test]
    fn nxdomain_has_no_answers() {
        let msg = Builder::response(3, 3)
            .question("nope.invalid", rtype::A)
            .build();
        let m = parse(&msg).expect("parse");
        assert_eq!(m.header.rcode, Rcode::NxDomain);
        assert_eq!(m.header.rcode.to_string(), "NXDOMAIN");
        assert_eq!(m.questions[0].name, "nope.invalid");
        assert!(m.answers.is_empty());
    }

    #[test]
    fn other_types_keep_their_length() {
        let msg = Builder::response(4, 0)
            .question("example.com", 16)
            .answer("example.com", 16, 5, b"\x05hello")
            .build();
        let m = parse(&msg).expect("parse");
        assert_eq!(m.answers[0].data, RecordData::Other { rtype: 16, len: 6 });
    }

    #[test]
    fn root_and_escaped_names() {
        let mut b = Builder::query(1);
        b.bytes.push(0);
        b.bytes.extend_from_slice(&[0, 2, 0, 1]);
        b.qd += 1;
        b.bytes
            .extend_from_slice(&[3, b'a', b'.', 0x07, 2, b'x', b'\\', 0]);
        b.bytes.extend_from_slice(&[0, 1, 0, 1]);
        b.qd += 1;
        let m = parse(&b.build()).expect("parse");
        assert_eq!(m.questions[0].name, ".");
        assert_eq!(m.questions[1].name, "a\\.\\007.x\\\\");
    }

    #[test]
    fn pointer_loops_are_errors() {
        // A pointer to itself.
        let mut b = Builder::query(1);
        b.pointer(12);
        b.bytes.extend_from_slice(&[0, 1, 0, 1]);
        b.qd = 1;
        assert!(matches!(
            parse(&b.build()),
            Err(DnsError::BadPointer {
                offset: 12,
                target: 12,
                ..
            })
        ));

        // A label followed by a pointer back to the label: would repeat forever.
        let mut b = Builder::query(1);
        b.bytes.extend_from_slice(&[1, b'a']);
        b.pointer(12);
        b.bytes.extend_from_slice(&[0, 1, 0, 1]);
        b.qd = 1;
        assert!(matches!(
            parse(&b.build()),
            Err(DnsError::BadPointer { .. })
        ));

        // Two pointers pointing at each other.
        let mut b = Builder::query(1);
        b.pointer(14);
        b.pointer(12);
        b.qd = 1;
        assert!(matches!(
            parse(&b.build()),
            Err(DnsError::BadPointer { .. })
        ));

        // An answer owner whose pointer goes back to its own first label.
        let mut b = Builder::response(1, 0).question("a.b", rtype::A);
        b.bytes.extend_from_slice(&[1, b'c']);
        let here = b.bytes.len();
        b.pointer(here - 2);
        b.record_head(1, 1, 4);
        b.bytes.extend_from_slice(&[1, 2, 3, 4]);
        assert!(matches!(
            parse(&b.build()),
            Err(DnsError::BadPointer { .. })
        ));
    }

    #[test]
    fn name_length_limit() {
        // 4 labels of 63 bytes take 4 * 64 + 1 = 257 bytes: over 255.
        let label = "x".repeat(63);
        let long = [label.as_str(); 4].join(".");
        let msg = Builder::query(1).question(&long, 1).build();
        assert!(matches!(
            parse(&msg),
            Err(DnsError::NameTooLong { offset: 12 })
        ));
        // 3 labels of 63 and one of 61: 3 * 64 + 62 + 1 = 255, the maximum.
        let ok = format!("{label}.{label}.{label}.{}", "y".repeat(61));
        let msg = Builder::query(1).question(&ok, 1).build();
        assert_eq!(
            parse(&msg).expect("255 bytes is fine").questions[0].name,
            ok
        );
    }

    #[test]
    fn reserved_label_types_are_errors() {
        let mut b = Builder::query(1);
        b.bytes.extend_from_slice(&[0x41, 0, 0, 1, 0, 1]);
        b.qd = 1;
        assert!(matches!(
            parse(&b.build()),
            Err(DnsError::BadLabelType {
                offset: 12,
                byte: 0x41
            })
        ));
    }

    #[test]
    fn truncated_answers_are_incomplete_but_kept() {
        let msg = Builder::response(5, 0)
            .question("many.example", rtype::A)
            .answer_ptr(12, rtype::A, 1, &[1, 1, 1, 1])
            .answer_ptr(12, rtype::A, 1, &[2, 2, 2, 2])
            .build();
        let full = parse(&msg).expect("full");
        assert_eq!(full.answers.len(), 2);
        // Cut at every byte inside the second answer.
        let second_start = msg.len() - 16;
        for cut in second_start..msg.len() {
            let m = parse(&msg[..cut]).expect("partial parse");
            assert!(m.incomplete, "cut at {cut}");
            assert_eq!(m.questions, full.questions, "cut at {cut}");
            assert_eq!(m.answers, full.answers[..1], "cut at {cut}");
        }
    }

    #[test]
    fn a_512_byte_capture_keeps_questions() {
        let mut b = Builder::response(6, 0).question("big.example", rtype::A);
        for i in 0..60u8 {
            b = b.answer_ptr(12, rtype::A, 1, &[10, 0, 0, i]);
        }
        let msg = b.build();
        assert!(msg.len() > 512);
        let m = parse(&msg[..512]).expect("parse");
        assert!(m.incomplete);
        assert_eq!(m.questions[0].name, "big.example");
        assert_eq!(m.answers.len(), (512 - 12 - 17) / 16);
    }

    #[test]
    fn truncation_inside_the_first_question_is_an_error() {
        let msg = Builder::query(1).question("example.com", 1).build();
        for cut in HEADER_LEN..msg.len() {
            assert!(
                matches!(
                    parse(&msg[..cut]),
                    Err(DnsError::Truncated {
                        section: Section::Question,
                        ..
                    })
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(parse(&[]), Err(DnsError::TooShort { len: 0 }));
        assert_eq!(parse(&[0; 11]), Err(DnsError::TooShort { len: 11 }));
        // A header announcing a question with nothing after it.
        let mut b = Builder::query(1).build();
        b[5] = 1;
        assert!(matches!(parse(&b), Err(DnsError::Truncated { .. })));
        // Wrong A record length.
        let msg = Builder::response(1, 0)
            .question("a.b", 1)
            .answer_ptr(12, rtype::A, 1, &[1, 2, 3])
            .build();
        assert!(matches!(
            parse(&msg),
            Err(DnsError::BadRecordLength {
                rtype: 1,
                len: 3,
                expected: 4,
                ..
            })
        ));
        // Text is not DNS.
        assert!(parse(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n").is_err());
    }

    #[test]
    fn tcp_prefix() {
        let msg = Builder::query(2).question("tcp.example", 1).build();
        let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&msg);
        framed.extend_from_slice(&[0xde, 0xad]);
        let inner = strip_tcp_length_prefix(&framed).expect("prefix");
        assert_eq!(inner, &msg[..]);
        assert_eq!(
            parse(inner).expect("parse").questions[0].name,
            "tcp.example"
        );
        // Cut capture: the available bytes.
        assert_eq!(strip_tcp_length_prefix(&framed[..20]), Some(&msg[..18]));
        assert_eq!(strip_tcp_length_prefix(&[0]), None);
        assert_eq!(strip_tcp_length_prefix(&[0, 0, 1]), None);
    }

    #[test]
    fn type_names() {
        assert_eq!(qtype_name(1), "A");
        assert_eq!(qtype_name(28), "AAAA");
        assert_eq!(qtype_name(5), "CNAME");
        assert_eq!(qtype_name(15), "MX");
        assert_eq!(qtype_name(16), "TXT");
        assert_eq!(qtype_name(65), "HTTPS");
        assert_eq!(qtype_name(666), "TYPE666");
        assert_eq!(Rcode::from_u8(12).to_string(), "RCODE12");
        for v in 0..16u8 {
            assert_eq!(Rcode::from_u8(v).to_u8(), v);
        }
    }

    #[test]
    fn serializes_rcode_as_text() {
        let m = parse(&Builder::response(3, 2).question("x.y", 1).build()).expect("parse");
        let json = serde_json::to_value(&m).expect("json");
        assert_eq!(json["header"]["rcode"], "SERVFAIL");
        assert_eq!(json["questions"][0]["name"], "x.y");
    }

    /// xorshift64: small, deterministic, good enough to make varied inputs.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    #[test]
    fn never_panics_on_random_or_mutated_input() {
        let seeds: Vec<Vec<u8>> = vec![
            Builder::query(1).question("www.example.com", 1).build(),
            Builder::response(2, 0)
                .question("example.com", 28)
                .answer_ptr(12, 1, 5, &[1, 2, 3, 4])
                .answer_ptr(12, 28, 5, &[0; 16])
                .answer_ptr(12, 16, 5, b"\x03abc")
                .build(),
            {
                let b = Builder::response(3, 0).question("a.b.c", 1);
                let (b, at) = b.cname("a.b.c", "d.e.f");
                b.answer_ptr(at, 1, 5, &[9, 9, 9, 9]).build()
            },
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut parsed = 0usize;
        let mut buf = Vec::with_capacity(600);
        for i in 0..200_000 {
            buf.clear();
            if i % 2 == 0 {
                // Random bytes with a plausible header so the sections get exercised.
                let len = (rng.next() % 600) as usize;
                buf.extend((0..len).map(|_| rng.next() as u8));
                if buf.len() >= HEADER_LEN {
                    buf[4] = 0;
                    buf[5] = (rng.next() % 4) as u8;
                    buf[6] = 0;
                    buf[7] = (rng.next() % 8) as u8;
                }
            } else {
                let seed = &seeds[i % seeds.len()];
                buf.extend_from_slice(seed);
                for _ in 0..=(rng.next() % 4) {
                    let at = (rng.next() as usize) % buf.len();
                    buf[at] = rng.next() as u8;
                }
                let cut = (rng.next() as usize) % (buf.len() + 1);
                buf.truncate(cut.max(buf.len() / 2));
            }
            if let Ok(m) = parse(&buf) {
                parsed += 1;
                assert!(m.questions.len() <= usize::from(m.header.question_count));
                assert!(m.answers.len() <= usize::from(m.header.answer_count));
                for q in &m.questions {
                    assert!(q.name.len() <= 4 * MAX_NAME_LEN);
                }
            }
            let _ = strip_tcp_length_prefix(&buf);
        }
        // Mutations of valid messages parse often: the sweep reached the record code.
        assert!(parsed > 10_000, "only {parsed} parsed");
    }
}
