"""The real-server run: gunicorn (2 sync workers) on 127.0.0.1 and a bounded load generator.

For each library and session engine: a fresh database and sessions made in the library's venv
(``inproc.py --prepare``), gunicorn from the same venv on a free loopback port, then wrk (Debian's; else a
small threaded Python client) against ``/login/`` (``login_required``) and ``/protected/`` (the library's
protection) with the verified session's cookie, alternating the two views in short rounds after a warm-up,
each request loop bounded in time. Before and after the load, one request per view checks that it answers
200 with the expected body (a 302 to the MFA page would otherwise count as a fast success).

Runs with the standard library only (the orchestrator's Python); only loopback addresses are used.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import venvs

BENCH = venvs.BENCH
WORK = BENCH / ".work"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def env_for(lib: str, engine: str, db: Path, prefix: str) -> dict:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env.update(
        {
            "BENCH_LIB": lib,
            "BENCH_ENGINE": engine,
            "BENCH_DB": str(db),
            "BENCH_REDIS_PREFIX": prefix,
            "DJANGO_SETTINGS_MODULE": "benchsite.settings",
        }
    )
    return env


def get(port: int, path: str, cookie: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": cookie, "Accept": "text/html"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            get(port, "/plain/", "")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer in time")


# -- load generators ---------------------------------------------------------------------------------------

WRK = shutil.which("wrk")


def ensure_wrk(log=print) -> str | None:
    """wrk from Debian if it is there or installable (as root), else None (the Python client is used)."""
    global WRK
    if WRK:
        return WRK
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        log("[server] installing wrk from Debian ...")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, timeout=300)
        WRK = shutil.which("wrk")
    return WRK


_WRK_REQS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(\w+)", re.M)
_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def run_wrk(port: int, path: str, cookie: str, seconds: float, connections: int, threads: int) -> dict:
    command = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-H",
        f"Cookie: {cookie}",
        "-H",
        "Accept: text/html",
        f"http://{HOST}:{port}{path}",
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    match = _WRK_REQS.search(out)
    if not match:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    requests = int(match.group(1))
    elapsed = float(match.group(2)) * _WRK_UNITS[match.group(3)]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": requests,
        "seconds": elapsed,
        "rps": requests / elapsed,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "bad_status": int(non2xx.group(1)) if non2xx else 0,
    }


def run_python_client(port: int, path: str, cookie: str, seconds: float, connections: int, threads: int) -> dict:
    """A bounded threaded client (one connection per thread, closed by the sync worker after each answer)."""
    deadline = time.perf_counter() + seconds
    counts, bad = [0] * connections, [0] * connections

    def worker(i):
        while time.perf_counter() < deadline:
            try:
                status, _body = get(port, path, cookie)
            except OSError:
                bad[i] += 1
                continue
            counts[i] += 1
            if status != 200:
                bad[i] += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - started
    return {"requests": sum(counts), "seconds": elapsed, "rps": sum(counts) / elapsed, "bad_status": sum(bad)}


def load(port, path, cookie, seconds, connections, threads) -> dict:
    if WRK:
        return run_wrk(port, path, cookie, seconds, connections, threads)
    return run_python_client(port, path, cookie, seconds, connections, threads)


# -- the workers' CPU time ---------------------------------------------------------------------------------


def worker_pids(master: int) -> list[int]:
    """gunicorn's worker processes: the master's children."""
    try:
        return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(stat.parent.name))
        return pids


def cpu_ns(pids: list[int]) -> int:
    """Nanoseconds the processes have run on a CPU (/proc/PID/schedstat): what a request costs the server,
    whatever else the machine is doing (the wall-clock rate also depends on what the other load leaves)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


# -- one library -------------------------------------------------------------------------------------------


def check(port: int, path: str, cookie: str, body: bytes) -> None:
    status, got = get(port, path, cookie)
    if status != 200 or got != body:
        raise RuntimeError(f"GET {path} answered {status} {got[:200]!r}, expected 200 {body!r}")


def run_one(lib: str, engine: str, opts, prefix: str, log=print) -> dict:
    work = WORK / f"server-{lib}-{engine}"
    work.mkdir(parents=True, exist_ok=True)
    db = work / "db.sqlite3"
    env = env_for(lib, engine, db, prefix)
    python = str(venvs.python_of(lib))
    prepared = subprocess.run(
        [python, str(BENCH / "inproc.py"), "--lib", lib, "--db", str(db), "--prepare"],
        env=env,
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if prepared.returncode:
        raise RuntimeError(f"prepare {lib}/{engine} failed:\n{prepared.stderr[-3000:]}")
    cookies = json.loads(prepared.stdout.strip().splitlines()[-1])
    cookie = f"{cookies['cookie_name']}={cookies['verified']}"
    port = free_port()
    log_file = open(work / "gunicorn.log", "w")
    proc = subprocess.Popen(
        [
            str(venvs.bin_of(lib, "gunicorn")),
            "benchsite.wsgi:application",
            "--chdir",
            str(BENCH),
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            str(opts.workers),
            "--worker-class",
            "sync",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=BENCH,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    views = {"login_required": ("/login/", b"login ok"), "protected": ("/protected/", b"protected ok")}
    results = {name: [] for name in views}
    try:
        wait_ready(port, proc)
        for path, body in views.values():
            check(port, path, cookie, body)
        for path, _body in views.values():  # warm-up: imports, connections, caches of both workers
            load(port, path, cookie, opts.warmup, opts.connections, opts.threads)
        for rnd in range(opts.rounds):
            order = list(views) if rnd % 2 == 0 else list(reversed(views))
            for name in order:
                pids = worker_pids(proc.pid)
                before = cpu_ns(pids)
                run = load(port, views[name][0], cookie, opts.seconds / opts.rounds, opts.connections, opts.threads)
                run["cpu_ns"] = cpu_ns(pids) - before
                results[name].append(run)
        for path, body in views.values():
            check(port, path, cookie, body)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # our own gunicorn's process group (its master and workers)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log_file.close()
    out = {}
    for name, runs in results.items():
        requests = sum(r["requests"] for r in runs)
        seconds = sum(r["seconds"] for r in runs)
        cpu = sum(r["cpu_ns"] for r in runs)
        out[name] = {
            "rps": requests / seconds,
            "requests": requests,
            "cpu_us": cpu / requests / 1000.0 if cpu and requests else None,
            "rounds_rps": [r["rps"] for r in runs],
            "bad": sum(r.get("bad_status", 0) + r.get("socket_errors", 0) for r in runs),
        }
    round_ratios = [p["rps"] / b["rps"] for p, b in zip(results["protected"], results["login_required"], strict=True)]
    # Adjacent rounds of the two views see the same machine; their ratios' median resists bursts of other load.
    out["ratio"] = statistics.median(round_ratios)
    out["ratio_total"] = out["protected"]["rps"] / out["login_required"]["rps"]
    out["round_ratios"] = round_ratios
    if out["protected"]["cpu_us"] and out["login_required"]["cpu_us"]:
        # Requests per CPU-second of the workers: the throughput ratio of a machine with nothing else to do.
        out["cpu_ratio"] = out["login_required"]["cpu_us"] / out["protected"]["cpu_us"]
    log(
        f"[server] {lib:6} {engine:22} login_required {out['login_required']['rps']:7.0f} req/s, "
        f"protected {out['protected']['rps']:7.0f} req/s, ratio {out['ratio']:.3f} (median of rounds), "
        f"CPU ratio {out.get('cpu_ratio', 0):.3f}"
    )
    return out


def run(libs, engines, opts, prefix, log=print) -> dict:
    ensure_wrk(log)
    result = {
        "generator": f"wrk ({WRK}) -t{opts.threads} -c{opts.connections}" if WRK else "python threads",
        "workers": opts.workers,
        "seconds_per_view": opts.seconds,
        "rounds": opts.rounds,
        "warmup": opts.warmup,
        "runs": {},
    }
    for lib in libs:
        for engine in engines:
            result["runs"].setdefault(lib, {})[engine] = run_one(lib, engine, opts, prefix, log)
    return result


if __name__ == "__main__":
    sys.exit("run it through bench/run.py --only server")
