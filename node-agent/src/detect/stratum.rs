//! Mining protocols on the wire: a process that speaks stratum is a miner, whatever its name,
//! its hash and its pool.
//!
//! The kernel's stream sensor sends the head (at most 512 bytes) of each of the first data
//! segments of an outgoing TCP connection that starts like a JSON object; [`recognise`] reads
//! that head as the start of a JSON-RPC request and names the mining method in it:
//! - stratum V1 (Bitcoin and most coins): `mining.subscribe`, `mining.authorize`,
//!   `mining.submit`, `mining.configure`, any `mining.*`;
//! - the Monero flavour (XMRig, xmr-stak, ...): `login` with a `params` object holding a
//!   `login` key, and `submit` with `job_id` and `nonce`;
//! - the Ethereum stratum proxy flavour: `eth_submitLogin`, `eth_submitWork`,
//!   `eth_submitHashrate`.
//!
//! The reader is a bounded scanner, not a full JSON parser: it follows the top-level object and
//! the keys of its `params` object, unescapes strings (`"\u006dethod"` is `"method"`), takes
//! every `method` key (a duplicate cannot hide one), skips nested values at any depth (a
//! counter, no recursion), and stops at whatever ends first: the head, the object, or malformed
//! input. It keeps at most [`MAX_NAME`] bytes of any string.

use std::fmt;

use vigil_crds::finding::{ConnectionDirection, NetworkAction, ResourceRole, RuntimeContext};
use vigil_detection::FindingType;

use super::{Candidate, Detector, ProcessLookup};
use crate::event::StreamInfo;

/// Which mining protocol a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Stratum V1 (`mining.*`).
    StratumV1,
    /// The Monero stratum flavour (`login`, `submit` with a job).
    Monero,
    /// The Ethereum stratum proxy flavour (`eth_submitLogin`, ...).
    EthProxy,
}

impl Flavour {
    /// The name used in findings (`stratumFlavour`).
    pub fn name(self) -> &'static str {
        match self {
            Flavour::StratumV1 => "stratum-v1",
            Flavour::Monero => "monero-stratum",
            Flavour::EthProxy => "eth-stratum-proxy",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mining request recognised at the start of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiningMessage {
    /// The JSON-RPC method, as sent (unescaped).
    pub method: String,
    /// The protocol it belongs to.
    pub flavour: Flavour,
}

/// Longest key or method name kept; longer ones are skipped (no mining method is that long).
const MAX_NAME: usize = 64;

/// The mining method at the start of `head`, if it is one. `head` may be cut anywhere, hold
/// several messages (only the first object is read), or be anything at all.
pub fn recognise(head: &[u8]) -> Option<MiningMessage> {
    let mut s = Scanner { b: head, i: 0 };
    s.ws();
    if !s.eat(b'{') {
        return None;
    }
    let mut methods: Vec<String> = Vec::new();
    let mut params = ParamKeys::default();
    loop {
        s.ws();
        if s.eat(b'}') {
            break;
        }
        let Some(key) = s.string() else {
            break;
        };
        s.ws();
        if !s.eat(b':') {
            break;
        }
        s.ws();
        match key.as_deref() {
            Some("method") if s.peek() == Some(b'"') => {
                match s.string() {
                    Some(Some(m)) => methods.push(m),
                    Some(None) => {}
                    None => break,
                };
            }
            Some("params") if s.peek() == Some(b'{') => {
                let complete = s.object_keys(&mut params);
                if !complete {
                    break;
                }
            }
            _ => {
                if !s.skip_value() {
                    break;
                }
            }
        }
        s.ws();
        if !s.eat(b',') {
            break;
        }
    }
    methods.into_iter().find_map(|method| {
        classify(&method, &params).map(|flavour| MiningMessage { method, flavour })
    })
}

/// The keys of `params` that tell a mining login or share from another request.
#[derive(Debug, Default)]
struct ParamKeys {
    login: bool,
    job_id: bool,
    nonce: bool,
}

fn classify(method: &str, params: &ParamKeys) -> Option<Flavour> {
    let m = method.to_ascii_lowercase();
    if let Some(rest) = m.strip_prefix("mining.")
        && !rest.is_empty()
    {
        return Some(Flavour::StratumV1);
    }
    match m.as_str() {
        "login" if params.login => Some(Flavour::Monero),
        "submit" if params.job_id && params.nonce => Some(Flavour::Monero),
        "eth_submitlogin" | "eth_submitwork" | "eth_submithashrate" => Some(Flavour::EthProxy),
        _ => None,
    }
}

/// A cursor over the head. Every method stops at the end of the input.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A string at the cursor: `Some(Some(text))` when complete and short enough to keep,
    /// `Some(None)` when complete but too long or not UTF-8, `None` when there is no string or
    /// the input ends inside it.
    fn string(&mut self) -> Option<Option<String>> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out: Vec<u8> = Vec::new();
        let mut keep = true;
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let unit = self.hex4()?;
                            // A surrogate half never spells an ASCII method name: keep the
                            // replacement character, which matches nothing.
                            char::from_u32(u32::from(unit)).unwrap_or('\u{fffd}')
                        }
                        _ => return None,
                    };
                    if keep {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                }
                _ => {
                    if keep {
                        out.push(c);
                    }
                }
            }
            if out.len() > MAX_NAME {
                keep = false;
                out.clear();
            }
        }
        Some(if keep {
            String::from_utf8(out).ok()
        } else {
            None
        })
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.b.get(self.i..self.i + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        let unit = u16::from_str_radix(text, 16).ok()?;
        self.i += 4;
        Some(unit)
    }

    /// Skips one value; false when the input ends or is malformed first.
    fn skip_value(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.string().is_some(),
            Some(b'{' | b'[') => self.skip_nested(),
            Some(_) => {
                // A number or a literal: up to the next delimiter.
                let start = self.i;
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.i += 1;
                }
                self.i > start && self.peek().is_some()
            }
            None => false,
        }
    }

    /// Skips an object or array, strings inside included (a counter, not recursion: any depth
    /// costs nothing but the bytes).
    fn skip_nested(&mut self) -> bool {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    if self.string().is_none() {
                        return false;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.i += 1;
                        return true;
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        false
    }

    /// Reads the top-level keys of the object at the cursor into `keys`, skipping the values.
    /// False when the input ends or is malformed before the object does (the keys seen so far
    /// are kept).
    fn object_keys(&mut self, keys: &mut ParamKeys) -> bool {
        if !self.eat(b'{') {
            return false;
        }
        loop {
            self.ws();
            if self.eat(b'}') {
                return true;
            }
            let Some(key) = self.string() else {
                return false;
            };
            match key.as_deref() {
                Some("login") => keys.login = true,
                Some("job_id") => keys.job_id = true,
                Some("nonce") => keys.nonce = true,
                _ => {}
            }
            self.ws();
            if !self.eat(b':') {
                return false;
            }
            self.ws();
            if !self.skip_value() {
                return false;
            }
            self.ws();
            if !self.eat(b',') {
                return self.eat(b'}');
            }
        }
    }
}

/// A process that sent a mining request on a TCP connection.
pub(crate) fn check_stream(
    d: &Detector,
    s: &StreamInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let Some(message) = recognise(&s.head) else {
        return Vec::new();
    };
    let finding_type = FindingType::CryptoCurrencyBitcoinToolB;
    let process = d.process_details(&s.process, lookup);
    let ip = s.remote.ip();
    let network = NetworkAction {
        connection_direction: ConnectionDirection::Outbound,
        protocol: "TCP".into(),
        local_ip: String::new(),
        local_port: s.local_port,
        remote_ip: ip.to_string(),
        remote_port: s.remote.port(),
        remote_domain: d.answers.get(&ip).cloned(),
    };
    let mut context = RuntimeContext {
        tool_category: Some("Coin miner".into()),
        ..RuntimeContext::default()
    };
    let extra = &mut context.additional;
    extra.insert("stratumMethod".into(), message.method.clone());
    extra.insert("stratumFlavour".into(), message.flavour.name().into());
    extra.insert("detectedBy".into(), "protocolOnTheWire".into());
    if s.sender != "socketLock" {
        // The segment left from softirq: the process is the sender of an earlier segment of the
        // same socket, or not known.
        extra.insert("processFrom".into(), s.sender.into());
    }
    let actor = if process.executable_path.is_empty() {
        s.process.comm.clone()
    } else {
        process.executable_path.clone()
    };
    vec![Candidate {
        container: s.process.container.clone(),
        finding_type,
        severity: super::default_severity(finding_type),
        title: "A process spoke a cryptocurrency mining protocol (stratum) on the network".into(),
        description: format!(
            "Process {} (pid {}, {}) sent the {} request {:?} to {}:{} over TCP: it is a miner, \
             whatever its name, and {} a mining pool or proxy.",
            s.process.comm,
            s.process.pid,
            if actor.is_empty() { "?" } else { &actor },
            message.flavour,
            message.method,
            ip,
            s.remote.port(),
            ip,
        ),
        key: format!("{actor}\0stratum\0{}", s.remote),
        role: ResourceRole::Actor,
        process: Some(process),
        context,
        network: Some(network),
        dns: None,
        evidence: Vec::new(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head and what it should be recognised as.
    type Case<'a> = (&'a [u8], Option<(&'a str, Flavour)>);

    fn m(head: &[u8]) -> Option<(String, Flavour)> {
        recognise(head).map(|m| (m.method, m.flavour))
    }

    #[test]
    fn mining_requests_are_named() {
        let xmrig = br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A","pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.2.0","algo":["rx/0"]}}"#;
        let cases: &[Case<'_>] = &[
            (
                b"{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cgminer/4.10.0\"]}\n",
                Some(("mining.subscribe", Flavour::StratumV1)),
            ),
            (
                br#"{"params": ["worker.1", "x"], "id": 2, "method": "mining.authorize"}"#,
                Some(("mining.authorize", Flavour::StratumV1)),
            ),
            (
                br#"{"id":4,"method":"mining.submit","params":["w","job","00","5e","0a"]}"#,
                Some(("mining.submit", Flavour::StratumV1)),
            ),
            (xmrig, Some(("login", Flavour::Monero))),
            (
                br#"{"id":3,"jsonrpc":"2.0","method":"submit","params":{"id":"1","job_id":"j","nonce":"0a0b","result":"ff"}}"#,
                Some(("submit", Flavour::Monero)),
            ),
            (
                br#"{"id":1,"method":"eth_submitLogin","params":["0xabc"],"worker":"w"}"#,
                Some(("eth_submitLogin", Flavour::EthProxy)),
            ),
            // Leading white space, escapes in the key and the value, a duplicate method.
            (
                b"  \r\n{\"\\u006dethod\" : \"mining.\\u0073ubscribe\"}",
                Some(("mining.subscribe", Flavour::StratumV1)),
            ),
            (
                br#"{"method":"ping","method":"mining.subscribe"}"#,
                Some(("mining.subscribe", Flavour::StratumV1)),
            ),
            // Two messages in one segment: the first is read.
            (
                b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n{\"id\":2,\"method\":\"mining.authorize\"}\n",
                Some(("mining.subscribe", Flavour::StratumV1)),
            ),
            // Cut after the method: the method is enough for stratum V1.
            (
                br#"{"id":1,"method":"mining.subscribe","params":["cgmin"#,
                Some(("mining.subscribe", Flavour::StratumV1)),
            ),
        ];
        for (head, want) in cases {
            let got = m(head);
            let want = want.map(|(s, f)| (s.to_owned(), f));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn ordinary_json_is_not_mining() {
        let cases: &[&[u8]] = &[
            br#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#,
            br#"{"jsonrpc":"2.0","method":"getblocktemplate","params":[],"id":1}"#,
            br#"{"jsonrpc":"2.0","method":"eth_getWork","params":[],"id":1}"#,
            // `login` of an ordinary API: no `params.login`.
            br#"{"method":"login","params":{"user":"alice","password":"x"}}"#,
            br#"{"method":"login","params":["alice","x"]}"#,
            // `submit` without a job and a nonce.
            br#"{"method":"submit","params":{"form":"contact"}}"#,
            br#"{"user":"alice","comment":"mining.subscribe is a stratum method"}"#,
            // The method name inside a nested value, not the request's.
            br#"{"params":{"method":"mining.subscribe"},"method":"echo"}"#,
            br#"{"method":"mining."}"#,
            b"POST /rpc HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"method\":\"mining.subscribe\"}",
            b"",
            b"{",
            b"[{\"method\":\"mining.subscribe\"}]",
        ];
        for head in cases {
            assert_eq!(m(head), None, "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn hostile_heads_end_cleanly() {
        // Truncated at every byte: never a panic, and never a match before the method is whole.
        let full =
            br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"w","pass":"x"}}"#;
        for cut in 0..full.len() {
            let got = m(&full[..cut]);
            let params_at = full
                .windows(9)
                .position(|w| w == br#""params":"#)
                .unwrap_or(0);
            if cut < params_at + 17 {
                assert_eq!(got, None, "cut at {cut}");
            }
        }
        assert_eq!(m(full), Some(("login".into(), Flavour::Monero)));

        // Deep nesting, unterminated strings, bad escapes, binary, a huge head.
        let mut deep = b"{\"a\":".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 10_000));
        assert_eq!(m(&deep), None);
        let mut deep_then_method = b"{\"a\":".to_vec();
        deep_then_method.extend(std::iter::repeat_n(b'[', 40));
        deep_then_method.extend(std::iter::repeat_n(b']', 40));
        deep_then_method.extend_from_slice(br#","method":"mining.subscribe"}"#);
        assert_eq!(
            m(&deep_then_method),
            Some(("mining.subscribe".into(), Flavour::StratumV1)),
            "nesting before the method is skipped"
        );
        assert_eq!(m(b"{\"method\":\"mining.subscr"), None);
        assert_eq!(m(b"{\"method\":\"mining.\\x\"}"), None);
        assert_eq!(m(b"{\"method\":\"mining.\\u00\"}"), None);
        assert_eq!(m(b"{\"method\":\"\\ud800mining.subscribe\"}"), None);
        assert_eq!(m(b"{\"method\":\"mining.\xff\xfe\"}"), None);
        let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        assert_eq!(m(&binary), None);
        let mut long_key = b"{\"".to_vec();
        long_key.extend(std::iter::repeat_n(b'k', 1 << 20));
        long_key.extend_from_slice(br#"":1,"method":"mining.subscribe"}"#);
        assert_eq!(
            m(&long_key),
            Some(("mining.subscribe".into(), Flavour::StratumV1)),
            "a long key is skipped, not kept"
        );
        let mut long_method = br#"{"method":"mining."#.to_vec();
        long_method.extend(std::iter::repeat_n(b'x', 100));
        long_method.extend_from_slice(b"\"}");
        assert_eq!(
            m(&long_method),
            None,
            "names longer than any mining method are not kept"
        );
    }
}
