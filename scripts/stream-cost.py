#!/usr/bin/env python3
"""Cost of the stream sensor (docs/PERFORMANCE.md): per-run time of the cgroup skb programs over a
loopback bulk transfer and over a connect storm, and of the cgroup connect4 program over the storm, with the stream
sensor off (`--disable-hook stream_egress`: no skb program, no owner recorded at connect) and on.

Usage (root, after `cargo build --release -p node-agent`):
    scripts/stream-cost.py [ROUNDS] [MEGABYTES]
Needs `kernel.bpf_stats_enabled=1` (set for the run and put back if it was 0). The agent's
programs are told from other agents' by the program ids in the fdinfo of its descriptors.
"""
import json, os, signal, socket, statistics, subprocess, sys, threading, time

B = os.environ.get("VIGIL_BIN", "target/release")
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
MB = int(sys.argv[2]) if len(sys.argv) > 2 else 400
PROGS = ("dns_egress", "stream_egress", "sock_connect4")


def progs():
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, check=True)
    return {p["id"]: p for p in json.loads(out.stdout)}


def transfer(megabytes):
    """Sends MB megabytes through a loopback TCP connection; returns MB/s."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    done = threading.Event()

    def sink():
        conn, _ = server.accept()
        while conn.recv(1 << 20):
            pass
        conn.close()
        done.set()

    threading.Thread(target=sink, daemon=True).start()
    chunk = b"\0" * (1 << 20)
    start = time.monotonic()
    client = socket.create_connection(("127.0.0.1", port))
    for _ in range(megabytes):
        client.sendall(chunk)
    client.close()
    done.wait()
    elapsed = time.monotonic() - start
    server.close()
    return megabytes / elapsed


def storm(seconds=4):
    listener = subprocess.Popen([f"{B}/vigil-trigger", "listen", "127.0.0.1:47100", "60"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    out = subprocess.run([f"{B}/vigil-trigger", "connect-storm", "127.0.0.1:47100", str(seconds)],
                         capture_output=True, text=True, check=True)
    listener.kill()
    listener.wait()
    return float(out.stdout.strip())


def agent_prog_ids(pid):
    """The ids of the programs the agent holds (`prog_id` in the fdinfo of its program fds)."""
    ids = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return ids
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def snapshot(ids):
    now = progs()
    return {i: (now[i].get("run_time_ns", 0), now[i].get("run_cnt", 0)) for i in ids if i in now}


def per_run(before, after, ids, name):
    t = sum(after[i][0] - before[i][0] for i in ids[name])
    n = sum(after[i][1] - before[i][1] for i in ids[name])
    return (t / n if n else float("nan")), n


def round_with(args):
    agent = subprocess.Popen([f"{B}/node-agent", "run", "--no-detection", *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    want = [n for n in PROGS if n != "stream_egress" or not args]
    deadline = time.monotonic() + 180
    while True:
        mine = agent_prog_ids(agent.pid)
        new = {i: p for i, p in progs().items() if i in mine}
        ids = {n: [i for i, p in new.items() if p.get("name") == n] for n in PROGS}
        if all(ids[n] for n in want):
            # Attached (cgroup programs attach after every program loaded): a connection of
            # our own makes each of them run.
            every = [i for v in ids.values() for i in v]
            s = snapshot(every)
            transfer(1)
            t = snapshot(every)
            if all(t[i][1] > s[i][1] for n in want for i in ids[n]):
                break
        if time.monotonic() > deadline:
            agent.kill()
            raise SystemExit("the agent's programs did not attach")
        time.sleep(1)
    time.sleep(3)
    every = [i for v in ids.values() for i in v]
    s0 = snapshot(every)
    rate = transfer(MB)
    s1 = snapshot(every)
    conns = storm()
    s2 = snapshot(every)
    agent.send_signal(signal.SIGINT)
    agent.wait()
    row = {"MB/s": rate, "conn/s": conns}
    for name in ("dns_egress", "stream_egress"):
        if ids[name]:
            row[name] = per_run(s0, s1, ids, name)
            row[name + " (storm)"] = per_run(s1, s2, ids, name)
    row["sock_connect4"] = per_run(s1, s2, ids, "sock_connect4")
    return row


def main():
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        was = f.read().strip()
    if was != "1":
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
    try:
        rows = {"off": [], "on": [], "none": []}
        for _ in range(ROUNDS):
            rows["none"].append({"MB/s": transfer(MB), "conn/s": storm()})
            rows["off"].append(round_with(["--disable-hook", "stream_egress"]))
            rows["on"].append(round_with([]))
        for label, rs in rows.items():
            print(label)
            for r in rs:
                print("   ", {k: (tuple(round(x, 1) for x in v) if isinstance(v, tuple) else round(v, 1))
                            for k, v in r.items()})
            for key in ("MB/s", "conn/s"):
                print(f"    median {key}: {statistics.median(r[key] for r in rs):.1f}")
            for key in ("dns_egress", "stream_egress", "dns_egress (storm)",
                        "stream_egress (storm)", "sock_connect4"):
                vals = [r[key][0] for r in rs if key in r]
                if vals:
                    print(f"    median {key} ns/run: {statistics.median(vals):.1f}")
    finally:
        if was != "1":
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(was)


if __name__ == "__main__":
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    main()
