//! Helpers the fuzz targets share, and the builders `examples/make_seeds.rs` writes the binary
//! seed corpora with.

use std::{mem::size_of, net::Ipv4Addr};

use node_agent::dns::{DnsMessage, HEADER_LEN, Opcode, RecordData};
use node_agent_common::{
    ActivityEvent, DnsEvent, EventHeader, ExecEvent, ExitEvent, FileEvent, ForkEvent, NetEvent,
    StreamEvent, SyntheticEvent, TaskIdentity,
    decode::{Plain, bytes_of},
    kind,
};

/// Bytes copied into 8-aligned memory, as the ring buffer hands records out (libFuzzer's
/// buffer is not guaranteed to be aligned for a `u64`).
pub struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    /// A copy of `bytes`, padded with zeros to at least `min_len` bytes.
    pub fn new(bytes: &[u8], min_len: usize) -> Self {
        let len = bytes.len().max(min_len);
        let mut words = vec![0u64; len.div_ceil(8)];
        let view = bytes_mut(&mut words);
        view[..bytes.len()].copy_from_slice(bytes);
        Self { words, len }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytes_of_words(&self.words)[..self.len]
    }

    /// The bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut bytes_mut(&mut self.words)[..len]
    }
}

fn bytes_of_words(words: &[u64]) -> &[u8] {
    // SAFETY: any initialised u64 memory is valid as bytes; the slice covers exactly the words.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
}

fn bytes_mut(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: as above; every byte pattern is a valid u64, so writes through it are fine.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) }
}

/// Every record kind with the size of its struct.
pub const RECORD_KINDS: &[(u16, usize)] = &[
    (kind::EXEC, size_of::<ExecEvent>()),
    (kind::FORK, size_of::<ForkEvent>()),
    (kind::EXIT, size_of::<ExitEvent>()),
    (kind::CONNECT, size_of::<NetEvent>()),
    (kind::ACCEPT, size_of::<NetEvent>()),
    (kind::CONNECT_OUTCOME, size_of::<NetEvent>()),
    (kind::DNS, size_of::<DnsEvent>()),
    (kind::STREAM, size_of::<StreamEvent>()),
    (kind::FILE, size_of::<FileEvent>()),
    (kind::ACTIVITY, size_of::<ActivityEvent>()),
    (kind::SYNTHETIC, size_of::<SyntheticEvent>()),
];

/// A zeroed record of `T` with its header filled in.
pub fn record<T: Plain>(kind: u16, ktime_ns: u64) -> Vec<u8> {
    let header = EventHeader {
        kind,
        _pad: 0,
        size: size_of::<T>() as u32,
        ktime_ns,
    };
    let mut bytes = vec![0u8; size_of::<T>()];
    bytes[..size_of::<EventHeader>()].copy_from_slice(bytes_of(&header));
    bytes
}

/// Writes a task identity at `TaskIdentity`'s place in every record (right after the header).
pub fn put_task(record: &mut [u8], pid: u32, ppid: u32, uid: u32, comm: &str) {
    let mut task = TaskIdentity {
        pid,
        tgid: pid,
        ppid,
        uid,
        gid: uid,
        euid: uid,
        egid: uid,
        pid_ns: 4_026_531_836,
        mnt_ns: 4_026_531_841,
        cgroup_id: 4242,
        start_time_ns: 1_000_000_000,
        ..TaskIdentity::default()
    };
    let n = comm.len().min(task.comm.len() - 1);
    task.comm[..n].copy_from_slice(&comm.as_bytes()[..n]);
    let at = size_of::<EventHeader>();
    record[at..at + size_of::<TaskIdentity>()].copy_from_slice(bytes_of(&task));
}

/// Encodes a parsed message back to the wire, uncompressed, with the header counts set to what
/// was parsed. `None` when a name is not in the presentation form the parser produces.
pub fn encode_dns(message: &DnsMessage) -> Option<Vec<u8>> {
    let h = &message.header;
    let mut flags = u16::from(h.response) << 15
        | u16::from(opcode_value(h.opcode) & 0xf) << 11
        | u16::from(h.authoritative) << 10
        | u16::from(h.truncated) << 9
        | u16::from(h.recursion_desired) << 8
        | u16::from(h.recursion_available) << 7;
    flags |= u16::from(h.rcode.to_u8() & 0xf);
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    out.extend_from_slice(&h.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&u16::try_from(message.questions.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&u16::try_from(message.answers.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    for q in &message.questions {
        out.extend_from_slice(&name_to_wire(&q.name)?);
        out.extend_from_slice(&q.qtype.to_be_bytes());
        out.extend_from_slice(&q.qclass.to_be_bytes());
    }
    for rr in &message.answers {
        out.extend_from_slice(&name_to_wire(&rr.name)?);
        out.extend_from_slice(&rr.rtype.to_be_bytes());
        out.extend_from_slice(&rr.rclass.to_be_bytes());
        out.extend_from_slice(&rr.ttl.to_be_bytes());
        let rdata = match &rr.data {
            RecordData::A(ip) => ip.octets().to_vec(),
            RecordData::Aaaa(ip) => ip.octets().to_vec(),
            RecordData::Cname(name) => name_to_wire(name)?,
            RecordData::Other { len, .. } => vec![0; usize::from(*len)],
        };
        out.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}

fn opcode_value(opcode: Opcode) -> u8 {
    match opcode {
        Opcode::Query => 0,
        Opcode::IQuery => 1,
        Opcode::Status => 2,
        Opcode::Notify => 4,
        Opcode::Update => 5,
        Opcode::Other(value) => value,
    }
}

/// A name in the parser's presentation form (`\.`, `\\` and `\DDD` escapes; `.` for the root)
/// as uncompressed wire labels.
pub fn name_to_wire(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 2);
    if name == "." {
        out.push(0);
        return Some(out);
    }
    let bytes = name.as_bytes();
    let mut label = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let next = *bytes.get(i + 1)?;
                if next.is_ascii_digit() {
                    let digits = bytes.get(i + 1..i + 4)?;
                    let text = std::str::from_utf8(digits).ok()?;
                    label.push(text.parse::<u8>().ok()?);
                    i += 4;
                } else {
                    label.push(next);
                    i += 2;
                }
            }
            b'.' => {
                out.push(u8::try_from(label.len()).ok()?);
                out.append(&mut label);
                i += 1;
            }
            b => {
                label.push(b);
                i += 1;
            }
        }
    }
    out.push(u8::try_from(label.len()).ok()?);
    out.append(&mut label);
    out.push(0);
    Some(out)
}

/// Builds DNS messages for the seed corpus.
pub struct DnsBuilder {
    bytes: Vec<u8>,
    questions: u16,
    answers: u16,
}

impl DnsBuilder {
    /// A query (recursion desired).
    pub fn query(id: u16) -> Self {
        Self::new(id, 0x0100)
    }

    /// A response with `rcode`.
    pub fn response(id: u16, rcode: u8) -> Self {
        Self::new(id, 0x8180 | u16::from(rcode))
    }

    fn new(id: u16, flags: u16) -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&flags.to_be_bytes());
        bytes.extend_from_slice(&[0; 8]);
        Self {
            bytes,
            questions: 0,
            answers: 0,
        }
    }

    /// Adds a question, its name uncompressed.
    pub fn question(mut self, name: &str, qtype: u16) -> Self {
        self.name(name);
        self.bytes.extend_from_slice(&qtype.to_be_bytes());
        self.bytes.extend_from_slice(&1u16.to_be_bytes());
        self.questions += 1;
        self
    }

    /// Adds an answer whose owner is a compression pointer to the first question's name.
    pub fn answer(mut self, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
        self.bytes
            .extend_from_slice(&(0xc000u16 | HEADER_LEN as u16).to_be_bytes());
        self.bytes.extend_from_slice(&rtype.to_be_bytes());
        self.bytes.extend_from_slice(&1u16.to_be_bytes());
        self.bytes.extend_from_slice(&ttl.to_be_bytes());
        self.bytes
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.bytes.extend_from_slice(rdata);
        self.answers += 1;
        self
    }

    /// An A answer.
    pub fn a(self, ip: Ipv4Addr) -> Self {
        self.answer(1, 300, &ip.octets())
    }

    /// The message bytes, with the header counts filled in.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[4..6].copy_from_slice(&self.questions.to_be_bytes());
        self.bytes[6..8].copy_from_slice(&self.answers.to_be_bytes());
        self.bytes
    }

    fn name(&mut self, name: &str) {
        for label in name.split('.').filter(|l| !l.is_empty()) {
            self.bytes.push(label.len() as u8);
            self.bytes.extend_from_slice(label.as_bytes());
        }
        self.bytes.push(0);
    }
}
