#!/usr/bin/env python3
"""Kernel time per program run of the agent's eBPF programs under the storms (docs/PERFORMANCE.md).

Usage (root, after `cargo build -p node-agent --bins`, or `--release`):
    scripts/prog-stats.py [--bin target/debug] [--seconds 4] [--rounds 2] [--storm NAME]...
                          [-- node-agent run ARGS...]

Starts `node-agent run` (output to /dev/null), waits until its sensors are attached, then for
each storm (exec, connect, write, open, open-relative, open-proc, thread, shell, setuid; exec,
connect, write and open by default) takes `run_cnt` and `run_time_ns` of every program the
agent holds before and after the storm and prints the difference per program: runs and ns per
run. Stats are switched on with `kernel.bpf_stats_enabled=1` for the run and put back as they
were after; they add about 20-40 ns to each run themselves. Only the agent's programs are read,
but every process's syscalls run them: the counts are system-wide, so run it on a machine as
quiet as you can.
Syscall numbers are x86-64's.
"""

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import time

SYS_BPF = 321  # x86-64
SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438
BPF_OBJ_GET_INFO_BY_FD = 15


def enable_stats():
    """Switches the run-time stats on; returns what to restore."""
    path = "/proc/sys/kernel/bpf_stats_enabled"
    before = open(path).read().strip()
    with open(path, "w") as f:
        f.write("1")
    return before


def restore_stats(before):
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write(before)


def prog_fds(pid):
    """prog_id -> fdinfo fields, for the bpf programs a process holds."""
    progs = {}
    base = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(base):
        try:
            with open(f"{base}/{fd}") as f:
                fields = dict(
                    line.split(":", 1) for line in f.read().splitlines() if ":" in line
                )
        except OSError:
            continue
        if "prog_id" in fields and "run_cnt" in fields:  # programs, not links
            info = {k.strip(): v.strip() for k, v in fields.items()}
            progs[int(info["prog_id"])] = info
    return progs


def names(pid, ids):
    """prog_id -> program name, read with BPF_OBJ_GET_INFO_BY_FD on a copy of the agent's
    descriptor (pidfd_getfd)."""
    libc = ctypes.CDLL(None, use_errno=True)
    by_id = {}
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        return {i: f"id{i}" for i in ids}
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
        except OSError:
            continue
        mine = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(fd), 0)
        if mine < 0:
            continue
        info = ctypes.create_string_buffer(256)
        attr = ctypes.create_string_buffer(16)
        ctypes.c_uint32.from_buffer(attr, 0).value = mine
        ctypes.c_uint32.from_buffer(attr, 4).value = len(info)
        ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(info)
        if libc.syscall(SYS_BPF, BPF_OBJ_GET_INFO_BY_FD, attr, ctypes.c_uint(len(attr))) == 0:
            prog_id = ctypes.c_uint32.from_buffer(info, 4).value
            by_id[prog_id] = info.raw[64:80].split(b"\0")[0].decode()
        os.close(mine)
    os.close(pidfd)
    return {i: by_id.get(i, f"id{i}") for i in ids}


def snapshot(pid):
    return {
        i: (int(v.get("run_cnt", 0)), int(v.get("run_time_ns", 0)))
        for i, v in prog_fds(pid).items()
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug")
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--storm",
        action="append",
        choices=[
            "exec",
            "connect",
            "write",
            "open",
            "open-relative",
            "open-proc",
            "thread",
            "shell",
            "setuid",
        ],
    )
    ap.add_argument("agent_args", nargs="*")
    args = ap.parse_args()
    storms = args.storm or ["exec", "connect", "write", "open"]
    trigger = f"{args.bin}/vigil-trigger"
    stats_before = enable_stats()
    listener = subprocess.Popen(
        [trigger, "listen", "127.0.0.1:47123", "3600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workdir = tempfile.mkdtemp(prefix="vigil-prog-stats-")
    os.makedirs(f"{workdir}/a/b", exist_ok=True)
    commands = {
        "exec": [trigger, "exec-storm", str(args.seconds), "2"],
        "connect": [trigger, "connect-storm", "127.0.0.1:47123", str(args.seconds)],
        "write": [trigger, "write-storm", f"{workdir}/a/b", str(args.seconds)],
        "open": [trigger, "open-storm", str(args.seconds)],
        # A relative path (run in /etc): the read-only opens whose file is looked at at exit.
        "open-relative": [os.path.abspath(trigger), "open-storm", str(args.seconds), "hostname"],
        # A path through /proc/ (as ps and top read): looked at at exit, then dropped.
        "open-proc": [trigger, "open-storm", str(args.seconds), "/proc/self/stat"],
        # A shell reading a file through a redirection in a loop: a shell's read-only opens
        # (marked in the kernel) and its dup2s.
        "shell": [
            "bash",
            "-c",
            f"s={args.seconds}; end=$((SECONDS + s)); n=0\n"
            "while [ $SECONDS -lt $end ]; do read -r x < /etc/hostname; n=$((n + 1)); done\n"
            "echo $((n / s))",
        ],
        # Threads started and joined in a loop: the fork and exit programs' thread filter.
        "thread": [
            "python3",
            "-c",
            "import threading, time\n"
            f"s = {args.seconds}\n"
            "t, n = time.time(), 0\n"
            "while time.time() - t < s:\n"
            "    th = threading.Thread(target=int)\n"
            "    th.start()\n"
            "    th.join()\n"
            "    n += 1\n"
            "print(n / s)\n",
        ],
        # set*id calls in a loop (root keeping uid 0): the privilege programs, which
        # ElevationToRoot reads, so they are attached with findings only too.
        "setuid": [
            "python3",
            "-c",
            "import os, time\n"
            f"s = {args.seconds}\n"
            "t, n = time.time(), 0\n"
            "while time.time() - t < s:\n"
            "    os.setresuid(0, 0, 0)\n"
            "    n += 1\n"
            "print(n / s)\n",
        ],
    }
    stderr = open(f"{workdir}/agent.log", "w")
    agent = subprocess.Popen(
        [f"{args.bin}/node-agent", "run", "--format", "json", *args.agent_args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        # Attached once the agent logs its sensors (programs are all loaded first, then
        # attached; the sensor lines come after the attach).
        deadline = time.time() + 300
        while "sensor hook=" not in open(f"{workdir}/agent.log").read():
            time.sleep(0.5)
            if agent.poll() is not None or time.time() > deadline:
                sys.exit(f"the agent did not start: see {workdir}/agent.log")
        time.sleep(3)
        ids = list(prog_fds(agent.pid))
        label = names(agent.pid, ids)
        results = {}
        for _ in range(args.rounds):
            for storm in storms:
                before = snapshot(agent.pid)
                rate = subprocess.run(
                    commands[storm],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd="/etc" if storm == "open-relative" else None,
                ).stdout.split()[-1]
                after = snapshot(agent.pid)
                per = results.setdefault(storm, {"rates": [], "progs": {}})
                per["rates"].append(float(rate))
                for i, (cnt, ns) in after.items():
                    c0, n0 = before.get(i, (0, 0))
                    if cnt - c0 > 0:
                        per["progs"].setdefault(label.get(i, f"id{i}"), []).append(
                            (cnt - c0, (ns - n0) / (cnt - c0))
                        )
        for storm in storms:
            per = results[storm]
            rates = ", ".join(f"{r:.0f}" for r in per["rates"])
            print(f"{storm} storm ({rates} /s)")
            for name, runs in sorted(per["progs"].items(), key=lambda kv: -kv[1][0][0]):
                n = statistics.median(r[0] for r in runs)
                ns = ", ".join(f"{r[1]:.0f}" for r in runs)
                print(f"  {name:<20} {n:>10.0f} runs  ns/run {ns}")
    finally:
        agent.send_signal(2)
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
        listener.kill()
        restore_stats(stats_before)


if __name__ == "__main__":
    main()
