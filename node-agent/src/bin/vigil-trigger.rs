//! `vigil-trigger`: performs one real behaviour for Vigil's tests and benchmarks, as a process
//! of its own (the agent filters its own tasks, so behaviour must come from another process).
//!
//! Every network action stays on loopback or inside a network namespace the caller made.

use std::{
    io::{self, BufRead, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::unix::net::UnixStream,
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

const USAGE: &str = "usage: vigil-trigger <action> [args]
  connect ADDR:PORT              blocking TCP connect; prints ok or the OS error
  udp-connect ADDR:PORT          UDP connect (no packet)
  accept ADDR:PORT               listen, print the bound address, accept one connection
  unix-connect PATH              connect to a unix stream socket
  dns-query SERVER:PORT NAME [--tcp]   send one A query, print the answer's rcode and addresses
  dns-server ADDR:PORT IP [--cname TARGET]   answer A queries with IP (through a CNAME to
                                 TARGET when given), NXDOMAIN for names starting nx-
  dns-server ADDR:PORT nxdomain  answer NXDOMAIN to every query
  exec-storm SECONDS WORKERS     fork+exec /bin/true in a loop; prints execs/s
  connect-storm ADDR:PORT SECONDS  TCP connect+close in a loop to a listener; prints connects/s
  connect-rewrite ADDR:PORT DECOY:PORT  blocking IPv4 TCP connect to ADDR while another
                                 thread, once the connect sleeps in the kernel, rewrites the
                                 sockaddr in memory to DECOY; prints rewritten, then ok or the
                                 OS error
  connect-flood N ADDR:PORT      N TCP connects to distinct loopback ports (127.0.0.1:1024 up,
                                 mostly refused), then one to ADDR:PORT; prints ok or its error
  connect-repeat ADDR:PORT N PAUSE_MS  N TCP connects in a row, a pause, then one more; prints ok
  tcp-send ADDR:PORT PART...     TCP connect, then write each PART (\r and \n spelled out are
                                 CR and LF) as a segment of its own (TCP_NODELAY, a pause
                                 between), then close; prints ok
  exit CODE                      exit with CODE
  listen ADDR:PORT SECONDS       accept and close connections (backlog 4096); prints the address
  write-storm DIR SECONDS        create+truncate+close one file in DIR in a loop; prints opens/s
  fifo-migrate PATH              make a FIFO at PATH; a thread pinned to one CPU opens it for
                                 writing (it sleeps in the open), is moved to another CPU, then
                                 a reader opens it: the open's entry and exit run on different
                                 CPUs; prints the two CPUs and the thread id
  open-storm SECONDS [PATH]      open+close PATH (/etc/hostname) read-only in a loop; prints
                                 opens/s
  cross-cpu FORK EXEC EXIT       pinned to CPU FORK, fork a child that moves to CPU EXEC and
                                 execs `vigil-trigger pin-exit EXIT` (which moves to CPU EXIT and
                                 exits 0); prints its own pid and the child's
  pin-exit CPU                   move to CPU and exit 0
  memfd-exec                     copy /bin/true into a memfd and execveat it (fileless)
  ptrace-attach                  attach to and detach from a child; prints the child's pid
  ptrace-traceme                 PTRACE_TRACEME
  vm-write                       process_vm_writev into a child; prints the child's pid
  proc-mem                       open a child's /proc/<pid>/mem for writing; prints its pid
  userfaultfd                    create a userfaultfd
  bind-mount SRC DST             in a new mount namespace, bind-mount SRC on DST
  setresuid UID                  setresuid(UID, UID, UID)
  revshell ADDR:PORT             connect, dup the socket onto 0, 1, 2 and exec sh -c 'exit 0'
  proc-mem-self                  open /proc/self/mem for writing
  ptrace-attach-pid PID          PTRACE_ATTACH to PID (and detach when it worked)
  vm-write-self                  process_vm_writev into this process
  tmpfs-mount DST                in a new mount namespace, mount a tmpfs on DST
  deleted-exec PATH              copy /bin/true to PATH, open it, unlink it, execveat the fd
  ptrace-peekuser                a child calls PTRACE_TRACEME and stops, the parent
                                 PTRACE_PEEKUSERs it (GuardDuty's tester); prints the child's pid
  vm-write-fail                  process_vm_writev into a child at an unmapped address (fails
                                 with EFAULT); prints the child's pid
  proc-mem-dump OUT              read a child's memory through /proc/<pid>/mem into OUT; prints
                                 the child's pid
  proc-mem-read FORM child|self|PID
                                 read a child's memory (this process's own, PID's) through its
                                 memory file, named by FORM: task (/proc/<pid>/task/<pid>/mem),
                                 relative (chdir to /proc/<pid>, open mem), dirfd (openat of mem
                                 on a directory fd of /proc/<pid>), fd (an O_PATH handle through a
                                 symbolic link, reopened through /proc/self/fd/N) or long
                                 (/proc/<pid>/ then 140 ./ then mem); prints the child's pid (self: its own)
  vm-read child|self|PID         process_vm_readv from a child (this process, PID); prints the
                                 child's pid (self: its own)
  vm-read-fail                   process_vm_readv from a child at an unmapped address (fails with
                                 EFAULT); prints the child's pid
  argv-flood N ARGS              run /bin/true N times with ARGS arguments of one byte each
  fork-churn N                   fork N children that exit at once (each waited for)
  dns-evict N SERVER NAME [--tcp|--answer-late]
                                 a socket aimed at SERVER, then N more per CPU (UDP connects,
                                 an empty datagram each, closed at once) to evict it from the agent's table of DNS
                                 sockets, then an A query for NAME on the first socket; with
                                 --answer-late, it serves SERVER itself, the query goes before
                                 the flood and the answer (127.66.0.9) after it
  dns-flood N                    in a network namespace of its own, N A queries for distinct
                                 246-byte names to a server of its own on 127.0.0.53:53 that
                                 answers each with a distinct address; prints answered/sent
  file-flood DIR N               create N empty files in DIR (4,096 at a time on each CPU in
                                 turn), then remove them
  huge-exec DIR MIB N            N copies of /bin/true in DIR grown to MIB MiB (each a byte
                                 longer than the last), each run once; left in DIR
  open-by-handle PATH [INO]      open_by_handle_at on the file system PATH is on, with the
                                 handle of inode INO (2: its root directory) as ext4 and xfs
                                 make them (type 1: inode, generation 0), read-only; prints the
                                 inode it opened or the OS error (the Shocker escape's first step)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["connect", addr] => parse(addr).map(|a| {
            // A blocking connect, so the syscall itself returns the outcome.
            match TcpStream::connect(a) {
                Ok(_) => println!("ok"),
                Err(e) => println!("error {}", e.raw_os_error().unwrap_or(0)),
            }
        }),
        ["udp-connect", addr] => parse(addr).and_then(|a| {
            let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
            socket.connect(a)?;
            println!("ok");
            Ok(())
        }),
        ["accept", addr] => parse(addr).and_then(|a| {
            let listener = TcpListener::bind(a)?;
            println!("{}", listener.local_addr()?);
            io::stdout().flush()?;
            let (_stream, peer) = listener.accept()?;
            // The reader may be gone by now (it only wanted the address): not an error.
            let _ = writeln!(io::stdout(), "peer {peer}");
            Ok(())
        }),
        // `@name`: an abstract name (containerd's shims listened on `@/containerd-shim/...`).
        ["unix-connect", path] => match path.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .and_then(|a| UnixStream::connect_addr(&a))
            }
            None => UnixStream::connect(path),
        }
        .map(|_| println!("ok")),
        // A crash with the kernel's default action (a core dump: `core_pattern`'s program).
        ["crash"] => {
            // SAFETY: restoring the default action of SIGSEGV and raising it; nothing runs after.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
            Ok(())
        }
        ["dns-query", server, name] => parse(server).and_then(|s| dns_query(s, name, false)),
        ["dns-query", server, name, "--tcp"] => {
            parse(server).and_then(|s| dns_query(s, name, true))
        }
        ["dns-evict", n, server, name, how @ ..] => {
            let how = match how {
                [] => Ok(Evict::Udp),
                ["--tcp"] => Ok(Evict::Tcp),
                ["--answer-late"] => Ok(Evict::AnswerLate),
                other => Err(invalid(format!("dns-evict: unknown option {other:?}"))),
            };
            parse(server).and_then(|s| dns_evict(s, number(n)?, name, how?))
        }
        ["dns-server", addr, "nxdomain"] => {
            parse(addr).and_then(|a| dns_server(a, Answer::NxDomain))
        }
        ["dns-server", addr, ip] => parse(addr).and_then(|a| {
            let ip: Ipv4Addr = ip.parse().map_err(|e| invalid(format!("{ip}: {e}")))?;
            dns_server(a, Answer::Address { ip, cname: None })
        }),
        ["dns-server", addr, ip, "--cname", target] => parse(addr).and_then(|a| {
            let ip: Ipv4Addr = ip.parse().map_err(|e| invalid(format!("{ip}: {e}")))?;
            let cname = Some((*target).to_owned());
            dns_server(a, Answer::Address { ip, cname })
        }),
        ["exec-storm", seconds, workers] => {
            let seconds = number(seconds);
            let workers = number(workers);
            seconds.and_then(|s| workers.and_then(|w| exec_storm(s, w)))
        }
        ["connect-rewrite", addr, decoy] => {
            parse(addr).and_then(|a| parse(decoy).and_then(|d| connect_rewrite(a, d)))
        }
        ["connect-flood", n, addr] => parse(addr).and_then(|a| {
            let n = number(n)?.min(64_000);
            for i in 0..n {
                let port = 1024 + i as u16;
                // Refused or accepted, either way a connect with its own peer.
                let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
            }
            match TcpStream::connect(a) {
                Ok(_) => println!("ok"),
                Err(e) => println!("error {}", e.raw_os_error().unwrap_or(0)),
            }
            Ok(())
        }),
        ["connect-repeat", addr, n, pause_ms] => parse(addr).and_then(|a| {
            let (n, pause) = (number(n)?, Duration::from_millis(number(pause_ms)?));
            for _ in 0..n {
                drop(TcpStream::connect(a)?);
            }
            std::thread::sleep(pause);
            drop(TcpStream::connect(a)?);
            println!("ok");
            Ok(())
        }),
        ["connect-storm", addr, seconds] => {
            parse(addr).and_then(|a| number(seconds).and_then(|s| connect_storm(a, s)))
        }
        ["tcp-send", addr, parts @ ..] => parse(addr).and_then(|a| tcp_send(a, parts)),
        ["exit", code] => return ExitCode::from(code.parse::<u8>().unwrap_or(1)),
        ["listen", addr, seconds] => {
            parse(addr).and_then(|a| number(seconds).and_then(|s| listen(a, s)))
        }
        ["argv-flood", n, args] => number(n).and_then(|n| {
            let args = vec!["a"; number(args)? as usize];
            for _ in 0..n {
                Command::new("/bin/true").args(&args).status()?;
            }
            Ok(())
        }),
        ["fork-churn", n] => number(n).and_then(fork_churn),
        ["dns-flood", n] => number(n).and_then(dns_flood),
        ["file-flood", dir, n] => number(n).and_then(|n| file_flood(std::path::Path::new(dir), n)),
        ["huge-exec", dir, mib, n] => number(mib)
            .and_then(|mib| number(n).and_then(|n| huge_exec(std::path::Path::new(dir), mib, n))),
        ["fifo-migrate", path] => fifo_migrate(std::path::Path::new(path)),
        ["cross-cpu", fork, exec, exit] => {
            number(fork).and_then(|f| number(exec).and_then(|e| cross_cpu(f, e, exit)))
        }
        ["pin-exit", cpu] => number(cpu).and_then(|cpu| pin(0, cpu as usize)),
        ["write-storm", dir, seconds] => number(seconds).and_then(|s| {
            let path = std::path::Path::new(dir).join("vigil-write-storm");
            let rate = storm(s, || std::fs::File::create(&path).map(drop))?;
            let _ = std::fs::remove_file(&path);
            println!("{rate:.1}");
            Ok(())
        }),
        ["open-storm", seconds, path @ ..] => number(seconds).and_then(|s| {
            let path = path.first().copied().unwrap_or("/etc/hostname");
            let rate = storm(s, || std::fs::File::open(path).map(drop))?;
            println!("{rate:.1}");
            Ok(())
        }),
        ["memfd-exec"] => memfd_exec(),
        ["ptrace-attach"] => with_child(|child| {
            // SAFETY: ptrace on our own stopped-or-sleeping child; waitpid on it.
            unsafe {
                check(libc::ptrace(libc::PTRACE_ATTACH, child, 0, 0) as i32)?;
                let mut status = 0;
                libc::waitpid(child, &mut status, 0);
                check(libc::ptrace(libc::PTRACE_DETACH, child, 0, 0) as i32)
            }
        }),
        // SAFETY: PTRACE_TRACEME takes no pointers.
        ["ptrace-traceme"] => check(unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) } as i32),
        ["vm-write"] => with_child(|child| {
            let data = [0x5au8; 8];
            let local = libc::iovec {
                iov_base: data.as_ptr() as *mut _,
                iov_len: data.len(),
            };
            // The child is a fork of us: TARGET has the same address there.
            let remote = libc::iovec {
                iov_base: (&raw const TARGET) as *mut _,
                iov_len: 8,
            };
            // SAFETY: valid iovecs; the kernel checks the remote range.
            let n = unsafe { libc::process_vm_writev(child, &local, 1, &remote, 1, 0) };
            check(if n == 8 { 0 } else { -1 })
        }),
        ["proc-mem"] => with_child(|child| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{child}/mem"))
                .map(drop)
        }),
        // SAFETY: userfaultfd takes flags only.
        ["userfaultfd"] => {
            check(unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) } as i32)
        }
        ["bind-mount", src, dst] => bind_mount(src, dst),
        ["setresuid", uid] => number(uid).and_then(|uid| {
            let uid = uid as libc::uid_t;
            // SAFETY: no pointers.
            check(unsafe { libc::setresuid(uid, uid, uid) })
        }),
        ["revshell", addr] => parse(addr).and_then(revshell),
        ["proc-mem-self"] => std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/mem")
            .map(drop),
        ["ptrace-attach-pid", pid] => number(pid).and_then(|pid| {
            let pid = pid as libc::pid_t;
            // SAFETY: ptrace and waitpid on a pid; no pointers.
            unsafe {
                check(libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) as i32)?;
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                check(libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) as i32)
            }
        }),
        ["vm-write-self"] => {
            let data = [0x5au8; 8];
            let local = libc::iovec {
                iov_base: data.as_ptr() as *mut _,
                iov_len: data.len(),
            };
            let remote = libc::iovec {
                iov_base: (&raw const TARGET) as *mut _,
                iov_len: 8,
            };
            // SAFETY: valid iovecs into this process's own memory.
            let n = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
            check(if n == 8 { 0 } else { -1 })
        }
        ["tmpfs-mount", dst] => tmpfs_mount(dst),
        ["deleted-exec", path] => deleted_exec(path),
        ["ptrace-peekuser"] => ptrace_peekuser(),
        ["vm-write-fail"] => with_child(|child| {
            let data = [0x5au8; 8];
            let local = libc::iovec {
                iov_base: data.as_ptr() as *mut _,
                iov_len: data.len(),
            };
            // Page 0 is never mapped: the kernel refuses the write, after the attempt.
            let remote = libc::iovec {
                iov_base: 8 as *mut _,
                iov_len: 8,
            };
            // SAFETY: valid local iovec; the kernel checks the remote range and fails.
            let n = unsafe { libc::process_vm_writev(child, &local, 1, &remote, 1, 0) };
            if n < 0 {
                Ok(())
            } else {
                Err(invalid("process_vm_writev to address 8 succeeded".into()))
            }
        }),
        ["proc-mem-dump", out] => with_child(|child| proc_mem_dump(child, out)),
        ["proc-mem-read", form, "child"] => with_child(|child| proc_mem_read(child, form)),
        ["proc-mem-read", form, "self"] => {
            // SAFETY: getpid has no preconditions.
            let me = unsafe { libc::getpid() };
            println!("{me}");
            proc_mem_read(me, form)
        }
        ["vm-read", "child"] => with_child(|child| vm_read(child, (&raw const TARGET) as usize)),
        ["vm-read", "self"] => {
            // SAFETY: getpid has no preconditions.
            let me = unsafe { libc::getpid() };
            println!("{me}");
            vm_read(me, (&raw const TARGET) as usize)
        }
        ["proc-mem-read", form, pid] => number(pid).and_then(|pid| proc_mem_read(pid as _, form)),
        ["vm-read", pid] => {
            number(pid).and_then(|pid| vm_read(pid as _, (&raw const TARGET) as usize))
        }
        // Page 0 is never mapped: the kernel refuses the read, after the attempt.
        ["vm-read-fail"] => with_child(|child| match vm_read(child, 8) {
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => Ok(()),
            Err(e) => Err(e),
            Ok(()) => Err(invalid("process_vm_readv from address 8 succeeded".into())),
        }),
        ["open-by-handle", path] => open_by_handle(path, 2),
        ["open-by-handle", path, ino] => number(ino).and_then(|ino| open_by_handle(path, ino)),
        _ => Err(invalid(USAGE.to_owned())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-trigger: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes each part as a segment of its own: what a client that writes its messages one by one
/// (a miner's subscribe, then its authorize) puts on the wire.
fn tcp_send(addr: SocketAddr, parts: &[&str]) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let bytes = part.replace("\\r", "\r").replace("\\n", "\n");
        stream.write_all(bytes.as_bytes())?;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    // Until the peer closes (it reads everything first), so no segment is cut off by a reset.
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    println!("ok");
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn parse(addr: &str) -> io::Result<SocketAddr> {
    let parsed: SocketAddr = addr.parse().map_err(|e| invalid(format!("{addr}: {e}")))?;
    let allowed = match parsed.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => ip.is_loopback(),
    };
    if !allowed {
        return Err(invalid(format!(
            "{addr}: only loopback addresses are allowed"
        )));
    }
    Ok(parsed)
}

fn number(text: &str) -> io::Result<u64> {
    text.parse().map_err(|e| invalid(format!("{text}: {e}")))
}

/// A standard query for `name`, type A, class IN.
fn query_bytes(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// How `dns-evict` sends its query.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Evict {
    /// Over UDP to a server already there.
    Udp,
    /// Over TCP to a server already there.
    Tcp,
    /// Over UDP to a server of its own on `server`, which answers `ANSWER_LATE_IP` only after
    /// the flood: the query went out while the table held the socket, the answer comes in after.
    AnswerLate,
}

/// The address `dns-evict --answer-late` answers.
const ANSWER_LATE_IP: Ipv4Addr = Ipv4Addr::new(127, 66, 0, 9);

/// A query on a socket aimed at `server`, sent after `n` other sockets per CPU were aimed there
/// too (UDP `connect`s, each sending an empty datagram, closed at once), so that the kernel's LRU table of DNS sockets has
/// evicted the first one's entry by then: every CPU's share of the table is flooded, whichever
/// CPU the first connect ran on. With [`Evict::AnswerLate`] the query goes before the flood and
/// only its answer after. Prints the answer's rcode and size.
fn dns_evict(server: SocketAddr, n: u64, name: &str, how: Evict) -> io::Result<()> {
    let any: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let query = query_bytes(0x5158, name);
    let own_server = match how {
        Evict::AnswerLate => Some(UdpSocket::bind(server)?),
        _ => None,
    };
    let mut stream = None;
    let mut socket = None;
    if how == Evict::Tcp {
        let s = TcpStream::connect_timeout(&server, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream = Some(s);
    } else {
        let s = UdpSocket::bind(any)?;
        s.connect(server)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        socket = Some(s);
    }
    let mut pending = None;
    if let (Some(own), Some(s)) = (&own_server, &socket) {
        s.send(&query)?;
        let mut buf = [0u8; 512];
        let (len, peer) = own.recv_from(&mut buf)?;
        let answer = Answer::Address {
            ip: ANSWER_LATE_IP,
            cname: None,
        };
        let reply =
            answer_bytes(&buf[..len], &answer).ok_or_else(|| invalid("bad query".into()))?;
        pending = Some((reply, peer));
    }
    for cpu in our_cpus()? {
        pin(0, cpu)?;
        for _ in 0..n {
            let s = UdpSocket::bind(any)?;
            s.connect(server)?;
            // An empty datagram: the agent's egress hook looks the socket up, which marks its
            // entry as used, so the table's LRU cannot keep the older, used entries instead.
            let _ = s.send(&[]);
        }
    }
    let answer = if let Some(mut stream) = stream {
        tcp_exchange(&mut stream, &query)?
    } else {
        let socket = socket.ok_or_else(|| io::Error::other("no socket"))?;
        match (&own_server, pending) {
            (Some(own), Some((reply, peer))) => {
                own.send_to(&reply, peer)?;
            }
            _ => {
                socket.send(&query)?;
            }
        }
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf)?;
        buf[..n].to_vec()
    };
    let rcode = answer.get(3).map(|b| b & 0x0f).unwrap_or(255);
    println!("rcode {rcode} bytes {}", answer.len());
    Ok(())
}

/// Creates `n` empty files in `dir`, then removes them. The files are made in blocks of 4,096
/// on each CPU in turn: the kernel's LRU maps with one common list keep what a CPU inserted last
/// in that CPU's own pending list until the same CPU inserts again, so a flood that stays on one
/// CPU never evicts what another CPU wrote. An adversary floods from every CPU, and so does this.
fn file_flood(dir: &std::path::Path, n: u64) -> io::Result<()> {
    const BLOCK: u64 = 4_096;
    let cpus = our_cpus()?;
    for i in 0..n {
        if i % BLOCK == 0 && !cpus.is_empty() {
            pin(0, cpus[(i / BLOCK) as usize % cpus.len()])?;
        }
        std::fs::File::create(dir.join(format!("vigil-flood-{i}")))?;
    }
    for i in 0..n {
        std::fs::remove_file(dir.join(format!("vigil-flood-{i}")))?;
    }
    Ok(())
}

/// One DNS message over TCP (RFC 1035 4.2.2: each with a two-byte length before it): sends
/// `query`, returns the answer.
fn tcp_exchange(stream: &mut TcpStream, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut answer)?;
    Ok(answer)
}

fn dns_query(server: SocketAddr, name: &str, tcp: bool) -> io::Result<()> {
    let query = query_bytes(0x5157, name);
    let answer = if tcp {
        let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        tcp_exchange(&mut stream, &query)?
    } else {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        socket.send_to(&query, server)?;
        let mut buf = [0u8; 512];
        let (n, _) = socket.recv_from(&mut buf)?;
        buf[..n].to_vec()
    };
    let rcode = answer.get(3).map(|b| b & 0x0f).unwrap_or(255);
    println!("rcode {rcode} bytes {}", answer.len());
    Ok(())
}

/// What `dns-server` answers.
#[derive(Clone)]
enum Answer {
    /// A record `ip` (after a CNAME to `cname` when set); NXDOMAIN for `nx-*` names.
    Address { ip: Ipv4Addr, cname: Option<String> },
    /// NXDOMAIN to every name.
    NxDomain,
}

/// A name in DNS wire format (no compression).
fn name_bytes(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Builds the answer to `query` (a single question).
fn answer_bytes(query: &[u8], answer: &Answer) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let mut end = 12;
    let mut first_label = Vec::new();
    while let Some(&len) = query.get(end) {
        if len == 0 {
            break;
        }
        if first_label.is_empty() {
            first_label = query.get(end + 1..end + 1 + len as usize)?.to_vec();
        }
        end += 1 + len as usize;
    }
    let question_end = end + 5;
    let question = query.get(12..question_end)?;
    let (ip, cname) = match answer {
        Answer::Address { ip, cname } if !first_label.starts_with(b"nx-") => (Some(*ip), cname),
        _ => (None, &None),
    };
    let records = u8::from(ip.is_some()) + u8::from(ip.is_some() && cname.is_some());
    let mut out = Vec::with_capacity(question_end + 64);
    out.extend_from_slice(&query[..2]);
    out.extend_from_slice(&[
        0x81,
        if ip.is_none() { 0x83 } else { 0x80 },
        0,
        1,
        0,
        records,
        0,
        0,
        0,
        0,
    ]);
    out.extend_from_slice(question);
    if let Some(ip) = ip {
        // The A record's owner: the question (a pointer to it), or the CNAME's target.
        let owner = match cname {
            Some(target) => {
                let target = name_bytes(target);
                out.extend_from_slice(&[0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60]);
                out.extend_from_slice(&(target.len() as u16).to_be_bytes());
                out.extend_from_slice(&target);
                target
            }
            None => vec![0xc0, 0x0c],
        };
        out.extend_from_slice(&owner);
        out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&ip.octets());
    }
    Some(out)
}

fn dns_server(addr: SocketAddr, answer: Answer) -> io::Result<()> {
    let udp = UdpSocket::bind(addr)?;
    let tcp = TcpListener::bind(addr)?;
    println!("ready");
    io::stdout().flush()?;
    let for_tcp = answer.clone();
    std::thread::spawn(move || {
        for stream in tcp.incoming().flatten() {
            let _ = serve_tcp(stream, &for_tcp);
        }
    });
    // Stop when the parent closes our stdin, so no server outlives its test.
    std::thread::spawn(|| {
        let mut line = String::new();
        let _ = io::stdin().lock().read_line(&mut line);
        std::process::exit(0);
    });
    let mut buf = [0u8; 512];
    loop {
        let (n, peer) = udp.recv_from(&mut buf)?;
        if let Some(reply) = answer_bytes(&buf[..n], &answer) {
            udp.send_to(&reply, peer)?;
        }
    }
}

fn serve_tcp(mut stream: TcpStream, answer: &Answer) -> io::Result<()> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut query)?;
    if let Some(reply) = answer_bytes(&query, answer) {
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        stream.write_all(&framed)?;
    }
    Ok(())
}

/// Forks `n` children that exit at once, each waited for: a process table's churn.
fn fork_churn(n: u64) -> io::Result<()> {
    for _ in 0..n {
        // SAFETY: the child only calls _exit.
        match unsafe { libc::fork() } {
            -1 => return Err(io::Error::last_os_error()),
            0 => unsafe { libc::_exit(0) },
            child => {
                let mut status = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(child, &mut status, 0) };
            }
        }
    }
    Ok(())
}

/// Sets the loopback interface of the current network namespace up.
fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain socket for the interface ioctls, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: fd is open and req a valid ifreq naming an interface.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            -1
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req)
        }
    };
    let error = io::Error::last_os_error();
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    if result < 0 { Err(error) } else { Ok(()) }
}

/// A DNS flood that stays in a network namespace of its own: `n` A queries for distinct
/// near-maximal names, each answered with a distinct address by a server thread of this process
/// on 127.0.0.53:53 (the agent's DNS sensor watches port 53 in every namespace).
fn dns_flood(n: u64) -> io::Result<()> {
    // SAFETY: unshare affects only this process (still single-threaded here).
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    loopback_up()?;
    let server = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 53), 53))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((len, peer)) = server.recv_from(&mut buf) {
            let id = u32::from(u16::from_be_bytes([buf[0], buf[1]]));
            let ip = Ipv4Addr::from(0x0a00_0000 | (id << 8) | (len as u32 & 0xff));
            let answer = Answer::Address { ip, cname: None };
            if let Some(reply) = answer_bytes(&buf[..len], &answer) {
                let _ = server.send_to(&reply, peer);
            }
        }
    });
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    client.connect((Ipv4Addr::new(127, 0, 0, 53), 53))?;
    client.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut answered = 0u64;
    let mut buf = [0u8; 512];
    for i in 0..n {
        // Three 61-byte labels and one of 60: 246 bytes, near the DNS maximum.
        let l = format!("{i:0>61}");
        let name = format!("{l}.{l}.{l}.x{i:0>59}");
        client.send(&query_bytes(i as u16, &name))?;
        if client.recv(&mut buf).is_ok() {
            answered += 1;
        }
    }
    println!("{answered}/{n}");
    Ok(())
}

/// Makes `n` copies of /bin/true in `dir`, each grown (sparse) to `mib` MiB plus its index in
/// bytes, so each is a file the agent has not hashed, and runs each once. The copies stay (the
/// caller removes `dir`): an agent that reads its records late still finds the files it hashes.
fn huge_exec(dir: &std::path::Path, mib: u64, n: u64) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for i in 0..n {
        let path = dir.join(format!("vigil-huge-{i}"));
        std::fs::copy("/bin/true", &path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        // Grown with the file closed again before it runs (no ETXTBSY).
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)?
            .set_len((mib << 20) + i)?;
        Command::new(&path).status()?;
    }
    Ok(())
}

/// The first two CPUs this process may run on.
fn two_cpus() -> io::Result<(usize, usize)> {
    match our_cpus()?[..] {
        [a, b, ..] => Ok((a, b)),
        _ => Err(io::Error::other("fewer than two CPUs to run on")),
    }
}

/// The CPUs this process may run on.
fn our_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is valid; the call fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the set is ours and of the size given.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: reads of our own set.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins a thread (0: the caller) to one CPU.
fn pin(tid: libc::pid_t, cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the set is ours and of the size given.
    if unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A syscall whose entry and exit run on different CPUs: a write-open of a FIFO sleeps until a
/// reader comes, and the sleeping thread is moved meanwhile. Pending state kept per CPU would
/// lose it.
fn fifo_migrate(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::{ffi::OsStrExt, fs::OpenOptionsExt};
    let (first, second) = two_cpus()?;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a valid C string.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let writer_path = path.to_owned();
    let writer = std::thread::spawn(move || -> io::Result<(i32, i32)> {
        pin(0, first)?;
        // SAFETY: no arguments.
        let _ = tx.send(unsafe { libc::gettid() });
        // SAFETY: no arguments.
        let before = unsafe { libc::sched_getcpu() };
        // Sleeps in the kernel until the reader below opens the FIFO.
        let file = std::fs::OpenOptions::new().write(true).open(&writer_path)?;
        // SAFETY: no arguments.
        let after = unsafe { libc::sched_getcpu() };
        drop(file);
        Ok((before, after))
    });
    let tid = rx
        .recv()
        .map_err(|_| io::Error::other("the writer thread ended early"))?;
    // Asleep inside openat: the syscall file names it while the thread is blocked.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let syscall =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
        let number = syscall.split_whitespace().next().unwrap_or("");
        if number == libc::SYS_openat.to_string() {
            break;
        }
        if Instant::now() > deadline {
            return Err(io::Error::other("the writer never slept in openat"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    pin(tid, second)?;
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let (before, after) = writer
        .join()
        .map_err(|_| io::Error::other("the writer thread panicked"))??;
    drop(reader);
    std::fs::remove_file(path)?;
    println!("{before} {after} {tid}");
    if before == after {
        return Err(io::Error::other(format!(
            "the open returned on the CPU it started on ({before})"
        )));
    }
    Ok(())
}

/// A fork, an exec and an exit on chosen CPUs: with a ring buffer per CPU group, their records
/// land in different rings, and the agent must still see them in that order.
fn cross_cpu(fork_cpu: u64, exec_cpu: u64, exit_cpu: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    pin(0, fork_cpu as usize)?;
    let me = std::fs::read_link("/proc/self/exe")?;
    // Everything the child needs is made before the fork: it only makes system calls.
    let path = std::ffi::CString::new(me.as_os_str().as_bytes())?;
    let argv: Vec<std::ffi::CString> = ["vigil-trigger", "pin-exit", exit_cpu]
        .iter()
        .map(|a| std::ffi::CString::new(*a))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it.
    let mut exec_set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(exec_cpu as usize, &mut exec_set) };
    // SAFETY: this process has one thread; the child makes only system calls before exec.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: the set and the strings were made before the fork and stay valid.
            unsafe {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &exec_set)
                    != 0
                {
                    libc::_exit(126);
                }
                libc::execv(path.as_ptr(), argv_ptrs.as_ptr());
                libc::_exit(127)
            }
        }
        child => {
            println!("{} {child}", std::process::id());
            let mut status = 0;
            // SAFETY: our own child; status is ours.
            if unsafe { libc::waitpid(child, &mut status, 0) } != child {
                return Err(io::Error::last_os_error());
            }
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "the child ended with status {status:#x}"
                )))
            }
        }
    }
}

fn exec_storm(seconds: u64, workers: u64) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..workers.max(1))
        .map(|_| {
            std::thread::spawn(move || -> io::Result<u64> {
                let mut n = 0;
                while Instant::now() < deadline {
                    Command::new("/bin/true")
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .status()?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle
            .join()
            .map_err(|_| invalid("worker panicked".into()))??;
    }
    println!("{:.1}", total as f64 / started.elapsed().as_secs_f64());
    Ok(())
}

fn connect_storm(addr: SocketAddr, seconds: u64) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        let stream = TcpStream::connect(addr)?;
        // Reset instead of TIME_WAIT, or a long storm runs out of ephemeral ports.
        reset_on_close(&stream)?;
        drop(stream);
        n += 1;
    }
    println!("{:.1}", n as f64 / started.elapsed().as_secs_f64());
    Ok(())
}

fn sockaddr_in(addr: SocketAddr) -> io::Result<libc::sockaddr_in> {
    let SocketAddr::V4(v4) = addr else {
        return Err(invalid(format!("{addr}: an IPv4 address is needed")));
    };
    Ok(libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    })
}

/// The evasion of a sensor that reads connect's sockaddr from user memory at the syscall's
/// exit: the connect sleeps in the handshake (the caller makes it: a listener whose queue is
/// full), and another thread rewrites the sockaddr meanwhile.
fn connect_rewrite(addr: SocketAddr, decoy: SocketAddr) -> io::Result<()> {
    let target = Box::new(sockaddr_in(addr)?);
    let decoy = sockaddr_in(decoy)?;
    let target = Box::into_raw(target);
    let shared = target as usize;
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let rewriter = std::thread::spawn(move || -> io::Result<()> {
        // Wait until the connecting thread sleeps inside connect(2): its syscall file then
        // starts with connect's number.
        let file = format!("/proc/self/task/{tid}/syscall");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&file)?;
            let in_connect = text
                .split_whitespace()
                .next()
                .is_some_and(|n| n == libc::SYS_connect.to_string());
            if in_connect {
                break;
            }
            if Instant::now() > deadline {
                return Err(invalid("the connect never slept".into()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: the sockaddr outlives both threads (freed after the join below); the kernel
        // has its own copy, which is what the rewrite is meant to get around.
        unsafe { std::ptr::write_volatile(shared as *mut libc::sockaddr_in, decoy) };
        println!("rewritten");
        io::stdout().flush()
    });
    // SAFETY: a fresh socket and a valid sockaddr_in of the given length.
    let rc = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let rc = libc::connect(
            fd,
            target.cast_const().cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let err = io::Error::last_os_error();
        libc::close(fd);
        if rc == 0 {
            0
        } else {
            err.raw_os_error().unwrap_or(-1)
        }
    };
    let rewritten = rewriter
        .join()
        .map_err(|_| invalid("the rewriting thread panicked".into()))?;
    // SAFETY: from Box::into_raw above; the other thread has ended.
    drop(unsafe { Box::from_raw(target) });
    rewritten?;
    if rc == 0 {
        println!("ok");
    } else {
        println!("error {rc}");
    }
    Ok(())
}

fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a properly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What `vm-write` overwrites in the child.
static mut TARGET: [u8; 8] = [0; 8];

fn check(rc: i32) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Runs `action` against a sleeping child, prints the child's pid, then ends the child.
fn with_child(action: impl FnOnce(libc::pid_t) -> io::Result<()>) -> io::Result<()> {
    // SAFETY: the child only sleeps until killed; no locks are taken after fork.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }
    let result = action(child);
    println!("{child}");
    // SAFETY: our own child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    result
}

fn memfd_exec() -> io::Result<()> {
    use std::{ffi::CString, os::fd::FromRawFd};
    let image = std::fs::read("/bin/true")?;
    let name = CString::new("vigil-fileless").map_err(|e| invalid(e.to_string()))?;
    // SAFETY: a valid C string; no flags.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
    check(fd)?;
    // SAFETY: fd was just created and is owned here.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(&image)?;
    let arg0 = CString::new("vigil-fileless").map_err(|e| invalid(e.to_string()))?;
    let empty = CString::new("").map_err(|e| invalid(e.to_string()))?;
    let argv = [arg0.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: NUL-terminated argv and envp arrays; AT_EMPTY_PATH execs the fd itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(io::Error::last_os_error())
}

fn bind_mount(src: &str, dst: &str) -> io::Result<()> {
    use std::ffi::CString;
    let c = |s: &str| CString::new(s).map_err(|e| invalid(e.to_string()));
    let (src, dst, root, none) = (c(src)?, c(dst)?, c("/")?, c("none")?);
    // SAFETY: valid C strings; a private mount namespace keeps the host's mounts untouched.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        ))
    }
}

/// What a dropper that cleans up after itself does: the program runs with no link on disk.
fn deleted_exec(path: &str) -> io::Result<()> {
    use std::{ffi::CString, os::fd::AsRawFd, os::unix::fs::PermissionsExt};
    std::fs::copy("/bin/true", path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    let file = std::fs::File::open(path)?;
    std::fs::remove_file(path)?;
    let arg0 = CString::new("vigil-deleted").map_err(|e| invalid(e.to_string()))?;
    let empty = CString::new("").map_err(|e| invalid(e.to_string()))?;
    let argv = [arg0.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: NUL-terminated argv and envp arrays; AT_EMPTY_PATH execs the fd itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            file.as_raw_fd(),
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(io::Error::last_os_error())
}

fn tmpfs_mount(dst: &str) -> io::Result<()> {
    use std::ffi::CString;
    let c = |s: &str| CString::new(s).map_err(|e| invalid(e.to_string()));
    let (dst, root, none, tmpfs) = (c(dst)?, c("/")?, c("none")?, c("tmpfs")?);
    // SAFETY: valid C strings; a private mount namespace keeps the host's mounts untouched.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            tmpfs.as_ptr(),
            dst.as_ptr(),
            tmpfs.as_ptr(),
            0,
            std::ptr::null(),
        ))
    }
}

fn revshell(addr: SocketAddr) -> io::Result<()> {
    use std::{ffi::CString, os::fd::AsRawFd};
    let stream = TcpStream::connect(addr)?;
    let fd = stream.as_raw_fd();
    for target in 0..3 {
        // SAFETY: both fds are open.
        check(unsafe { libc::dup2(fd, target) })?;
    }
    let sh = CString::new("/bin/sh").map_err(|e| invalid(e.to_string()))?;
    let dash_c = CString::new("-c").map_err(|e| invalid(e.to_string()))?;
    let script = CString::new("exit 0").map_err(|e| invalid(e.to_string()))?;
    let argv = [
        sh.as_ptr(),
        dash_c.as_ptr(),
        script.as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: NUL-terminated argv.
    unsafe { libc::execv(sh.as_ptr(), argv.as_ptr()) };
    Err(io::Error::last_os_error())
}

/// Runs `op` in a loop for `seconds`; returns calls per second.
fn storm(seconds: u64, mut op: impl FnMut() -> io::Result<()>) -> io::Result<f64> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        for _ in 0..64 {
            op()?;
        }
        n += 64;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// A listener with a deep backlog (std's is 128, which a connect storm overflows) that accepts
/// and closes until `seconds` have passed.
fn listen(addr: SocketAddr, seconds: u64) -> io::Result<()> {
    let std_listener = TcpListener::bind(addr)?;
    // SAFETY: re-listen on our own socket with a larger backlog.
    check(unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&std_listener), 4096) })?;
    println!("{}", std_listener.local_addr()?);
    io::stdout().flush()?;
    std_listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        match std_listener.accept() {
            Ok((stream, _)) => drop(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(200))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What GuardDuty's runtime tester does for ProcessInjection.Ptrace: the child asks to be traced
/// and stops; the parent reads one word of its user area.
fn ptrace_peekuser() -> io::Result<()> {
    // SAFETY: the child only calls ptrace and raise; the parent waits for it.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        // SAFETY: no pointers; the child stops until the parent kills it.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: our own child; PEEKUSER reads a word of its user area (offset 0).
    let result = unsafe {
        libc::waitpid(child, &mut status, 0);
        *libc::__errno_location() = 0;
        let word = libc::ptrace(libc::PTRACE_PEEKUSER, child, 0, 0);
        if word == -1 && *libc::__errno_location() != 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    println!("{child}");
    // SAFETY: our own child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    result
}

/// Reads `pid`'s copy of `TARGET` (a fork of us, or this process) through its memory file,
/// reached by a path of the given form.
fn proc_mem_read(pid: libc::pid_t, form: &str) -> io::Result<()> {
    use std::os::unix::{ffi::OsStrExt, fs::FileExt, io::FromRawFd};
    let mem = match form {
        "task" => std::fs::File::open(format!("/proc/{pid}/task/{pid}/mem"))?,
        "relative" => {
            std::env::set_current_dir(format!("/proc/{pid}"))?;
            std::fs::File::open("mem")?
        }
        "dirfd" => {
            use std::os::fd::AsRawFd;
            let dir = std::fs::File::open(format!("/proc/{pid}"))?;
            let name = std::ffi::CString::new(std::ffi::OsStr::new("mem").as_bytes())
                .map_err(|e| invalid(e.to_string()))?;
            // SAFETY: a directory fd we hold and a NUL-terminated name.
            let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), libc::O_RDONLY) };
            check(fd)?;
            // SAFETY: fd was just opened and is owned here.
            unsafe { std::fs::File::from_raw_fd(fd) }
        }
        // An O_PATH handle through a symbolic link named otherwise, reopened for reading
        // through /proc/self/fd.
        "fd" => {
            use std::os::{fd::AsRawFd, unix::fs::OpenOptionsExt};
            let link = std::env::temp_dir().join(format!("vigil-procmem-{}", std::process::id()));
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("/proc/{pid}/mem"), &link)?;
            let handle = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH)
                .open(&link);
            let _ = std::fs::remove_file(&link);
            let handle = handle?;
            std::fs::File::open(format!("/proc/self/fd/{}", handle.as_raw_fd()))?
        }
        // Longer than the kernel's look at the string (PATH_LEN bytes).
        "long" => std::fs::File::open(format!("/proc/{pid}/{}mem", "./".repeat(140)))?,
        _ => return Err(invalid(format!("unknown form {form}"))),
    };
    let mut buf = [0u8; 8];
    mem.read_exact_at(&mut buf, (&raw const TARGET) as u64)
}

/// `process_vm_readv` of 8 bytes at `remote` in `pid`.
fn vm_read(pid: libc::pid_t, remote: usize) -> io::Result<()> {
    let mut buf = [0u8; 8];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: remote as *mut _,
        iov_len: 8,
    };
    // SAFETY: a valid local iovec; the kernel checks the remote range.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads the child's copy of `TARGET` through `/proc/<child>/mem` and writes it to `out`: a
/// memory dump into a file.
fn proc_mem_dump(child: libc::pid_t, out: &str) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{child}/mem"))?;
    let mut buf = [0u8; 8];
    // The child is a fork of us: TARGET has the same address there.
    mem.read_exact_at(&mut buf, (&raw const TARGET) as u64)?;
    std::fs::write(out, buf)
}

/// `open_by_handle_at` with a handle made up, as Shocker makes them: `FILEID_INO32_GEN` (type 1)
/// with inode `ino` and generation 0, on the file system `path` is on. Prints the opened inode, or
/// `error N`; a refusal is the kernel's answer, not this action's failure.
fn open_by_handle(path: &str, ino: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let mount = std::fs::File::open(path)?;
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        ino: u32,
        generation: u32,
    }
    let mut handle = Handle {
        bytes: 8,
        kind: 1,
        ino: u32::try_from(ino).map_err(|_| invalid(format!("inode {ino} is over 32 bits")))?,
        generation: 0,
    };
    // SAFETY: a valid descriptor and a `struct file_handle` of the length it claims.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            &raw mut handle,
            libc::O_RDONLY,
        )
    };
    if fd < 0 {
        println!(
            "error {}",
            io::Error::last_os_error().raw_os_error().unwrap_or(0)
        );
        return Ok(());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let opened = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let meta = opened.metadata()?;
    println!("opened {}", std::os::unix::fs::MetadataExt::ino(&meta));
    Ok(())
}
