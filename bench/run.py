"""The benchmark, in one command: ``python bench/run.py`` (from the repository root; ``--help`` for options).

1. Creates or reuses three virtualenvs under bench/.venvs/ with this Python and one Django version: this
   working tree (editable), django-multifactor 0.9.5 and django-otp 1.7.5 (bench/venvs.py).
2. In-process, one process per library (bench/inproc.py): an undecorated view, ``login_required`` and the
   library's protection for a verified user, plus the cold path, on the db and signed_cookies session
   engines with the default configuration otherwise: median time per request, ratio protected /
   login_required per repetition, SQL statements per request, session writes; for this tree also an async
   view (protected / async login_required, through an ASGIHandler) and a session signed in through Django's
   own backend (the revocation counter read by a query of its own instead of with the user).
3. A real server per library (bench/server.py): gunicorn with 2 workers on 127.0.0.1, wrk for a fixed time:
   requests per second of the protected view over the login_required view.
4. What one verification costs with this library (bench/verify.py): TOTP, recovery code, WebAuthn.

Writes bench/results/latest.json and bench/results/latest.rst (the tables) and prints the tables; a partial
or ``--quick`` run writes latest-<parts>.json/.rst instead, leaving the last full run's files alone.
Runs with the standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server
import venvs

BENCH = venvs.BENCH
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
LABELS = {"ours": "this tree", "mf095": "django-multifactor 0.9.5", "otp": "django-otp 1.7.5"}
ENGINE_LABELS = {"db": "db", "signed_cookies": "signed_cookies"}
TARGET_RATIO, TARGET_SERVER = 1.05, 0.95


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip() or str(os.cpu_count()),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "loadavg_start": os.getloadavg(),
    }


def venv_env(lib: str, prefix: str) -> dict:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env.update({"BENCH_LIB": lib, "BENCH_REDIS_PREFIX": prefix})
    return env


def run_inproc(lib: str, args, prefix: str) -> dict:
    out = WORK / f"inproc-{lib}.json"
    engines = args.engines
    command = [
        str(venvs.python_of(lib)),
        str(BENCH / "inproc.py"),
        "--lib",
        lib,
        "--db",
        str(WORK / f"inproc-{lib}" / "db.sqlite3"),
        "--out",
        str(out),
        "--engines",
        ",".join(engines),
        "--reps",
        str(args.reps),
        "--requests",
        str(args.requests),
        "--batch",
        str(args.batch),
    ]
    if args.profile and lib == "ours":
        command += ["--profile", ",".join(engines)]
    log(f"[inproc] {LABELS[lib]}: {', '.join(engines)} ...")
    subprocess.run(command, env=venv_env(lib, prefix), cwd=BENCH, check=True, timeout=1800)
    return json.loads(out.read_text())


def run_verify(args, prefix: str) -> dict:
    out = WORK / "verify.json"
    engines = args.engines
    command = [
        str(venvs.python_of("ours")),
        str(BENCH / "verify.py"),
        "--db",
        str(WORK / "verify" / "db.sqlite3"),
        "--out",
        str(out),
        "--samples",
        str(args.verify_samples),
        "--engines",
        ",".join(engines),
    ]
    log("[verify] this tree ...")
    subprocess.run(command, env=venv_env("ours", prefix), cwd=BENCH, check=True, timeout=900)
    return json.loads(out.read_text())


# -- tables ------------------------------------------------------------------------------------------------


def rst_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    rule = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([rule, line(header), rule, *(line(r) for r in rows), rule])


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def inproc_table(results: dict) -> str:
    header = [
        "library",
        "sessions",
        "undecorated",
        "login_required",
        "protected",
        "ratio (min-max)",
        "CPU ratio",
        "best-batch ratio",
        "extra SQL",
        "session write",
        "cold path",
        "cold SQL",
        "cold write",
    ]
    rows = []
    for lib, data in results.items():
        for engine, r in data["engines"].items():
            v = r["views"]
            rows.append(
                [
                    LABELS[lib],
                    ENGINE_LABELS[engine],
                    f"{v['undecorated']['us']['median']:.0f} us",
                    f"{v['login_required']['us']['median']:.0f} us",
                    f"{v['protected']['us']['median']:.0f} us",
                    f"{r['ratio']['median']:.3f} ({r['ratio']['min']:.3f}-{r['ratio']['max']:.3f})",
                    f"{r['cpu_ratio']['median']:.3f}",
                    f"{r['best_ratio']:.3f}",
                    f"{r['extra_queries']:+d}",
                    yes_no(v["protected"]["session_written"]),
                    f"{v['cold']['us']['median']:.0f} us ({r['cold_ratio']['median']:.2f}x)",
                    f"{r['cold_extra_queries']:+d}",
                    yes_no(v["cold"]["session_written"]),
                ]
            )
    return rst_table(header, rows)


def ours_table(results: dict) -> str:
    """This tree's async rows and its fallback without the backend mixin, per engine."""
    data = results.get("ours")
    if not data:
        return ""
    header = ["sessions", "view", "baseline", "protected", "ratio (min-max)", "CPU ratio", "extra SQL", "write"]
    rows = []
    for engine, r in data["engines"].items():
        a = r.get("async")
        if a:
            v = a["views"]
            rows.append(
                [
                    ENGINE_LABELS[engine],
                    "async view (ASGI)",
                    f"{v['async_login_required']['us']['median']:.0f} us",
                    f"{v['async_protected']['us']['median']:.0f} us",
                    f"{a['ratio']['median']:.3f} ({a['ratio']['min']:.3f}-{a['ratio']['max']:.3f})",
                    f"{a['cpu_ratio']['median']:.3f}",
                    f"{a['extra_queries']:+d}",
                    yes_no(v["async_protected"]["session_written"]),
                ]
            )
        if "unjoined_ratio" in r:
            v, u = r["views"], r["unjoined_ratio"]
            rows.append(
                [
                    ENGINE_LABELS[engine],
                    "Django's ModelBackend (W007)",
                    f"{v['login_required']['us']['median']:.0f} us",
                    f"{v['unjoined']['us']['median']:.0f} us",
                    f"{u['median']:.3f} ({u['min']:.3f}-{u['max']:.3f})",
                    "",
                    f"{r['unjoined_extra_queries']:+d}",
                    yes_no(v["unjoined"]["session_written"]),
                ]
            )
    return rst_table(header, rows) if rows else ""


MIDDLEWARE_LABELS = {"ours": "this tree's SignedInSessionsMiddleware", "otp": "django-otp's OTPMiddleware"}


def middleware_note(results: dict) -> str:
    """What each library's per-request middleware alone costs a login_required page."""
    notes = []
    for lib, label in MIDDLEWARE_LABELS.items():
        data = results.get(lib)
        if not data:
            continue
        parts = []
        for engine, r in data["engines"].items():
            if "middleware_ratio" in r:
                v = r["views"]
                extra = v["login_required+mw"]["queries"] - v["login_required"]["queries"]
                parts.append(
                    f"{ENGINE_LABELS[engine]}: {v['login_required+mw']['us']['median']:.0f} us, "
                    f"{r['middleware_ratio']['median']:.3f}x, {extra:+d} SQL"
                )
        if parts:
            notes.append(f"{label} alone on a login_required page (no protection): " + "; ".join(parts) + ".")
    return " ".join(notes)


def server_table(result: dict) -> str:
    header = [
        "library",
        "sessions",
        "login_required req/s",
        "protected req/s",
        "ratio",
        "rounds min-max",
        "worker CPU/request",
        "CPU ratio",
        "errors",
    ]
    rows = []
    for lib, engines in result["runs"].items():
        for engine, r in engines.items():
            rows.append(
                [
                    LABELS[lib],
                    ENGINE_LABELS[engine],
                    f"{r['login_required']['rps']:.0f}",
                    f"{r['protected']['rps']:.0f}",
                    f"{r['ratio']:.3f}",
                    f"{min(r['round_ratios']):.3f}-{max(r['round_ratios']):.3f}",
                    f"{r['login_required']['cpu_us'] or 0:.0f} / {r['protected']['cpu_us'] or 0:.0f} us",
                    f"{r.get('cpu_ratio', 0):.3f}",
                    str(r["login_required"]["bad"] + r["protected"]["bad"]),
                ]
            )
    return rst_table(header, rows)


def verify_table(result: dict) -> str:
    names = {
        "totp": "TOTP code (totp_auth page)",
        "recovery": "recovery code (recovery_auth page)",
        "webauthn": "WebAuthn assertion (API complete)",
        "webauthn_begin": "WebAuthn options (API begin)",
    }
    header = ["verification", "sessions", "median", "min-max", "SQL statements"]
    rows = []
    for engine, r in result["engines"].items():
        for key, label in names.items():
            m = r.get(key)
            if not m:
                continue
            if "skipped" in m:
                rows.append([label, ENGINE_LABELS[engine], "skipped", m["skipped"], ""])
                continue
            rows.append(
                [
                    label,
                    ENGINE_LABELS[engine],
                    f"{m['ms']['median']:.1f} ms",
                    f"{m['ms']['min']:.1f}-{m['ms']['max']:.1f} ms",
                    str(m["queries"]) if m["queries"] == m["queries_min"] else f"{m['queries_min']}-{m['queries']}",
                ]
            )
    return rst_table(header, rows)


def verdicts(report: dict) -> list[str]:
    lines = []
    ours = report.get("inproc", {}).get("ours")
    if ours:
        for engine, r in ours["engines"].items():
            ok = r["ratio"]["median"] <= TARGET_RATIO and r["extra_queries"] == 0
            ok = ok and not r["views"]["protected"]["session_written"]
            lines.append(
                f"in-process, {ENGINE_LABELS[engine]}: ratio {r['ratio']['median']:.3f} (target <= {TARGET_RATIO}), "
                f"{r['extra_queries']:+d} SQL (target 0), session written: "
                f"{yes_no(r['views']['protected']['session_written'])} (target no) -> {'MET' if ok else 'MISSED'}"
            )
            a = r.get("async")
            if a:
                ok = a["ratio"]["median"] <= TARGET_RATIO and a["extra_queries"] == 0
                ok = ok and not a["views"]["async_protected"]["session_written"]
                lines.append(
                    f"in-process async view, {ENGINE_LABELS[engine]}: ratio {a['ratio']['median']:.3f} "
                    f"(target <= {TARGET_RATIO}), {a['extra_queries']:+d} SQL (target 0), session written: "
                    f"{yes_no(a['views']['async_protected']['session_written'])} (target no) -> "
                    f"{'MET' if ok else 'MISSED'}"
                )
    srv = report.get("server", {}).get("runs", {}).get("ours")
    if srv:
        for engine, r in srv.items():
            ok = r["ratio"] >= TARGET_SERVER
            cpu = r.get("cpu_ratio")
            lines.append(
                f"gunicorn, {ENGINE_LABELS[engine]}: ratio {r['ratio']:.3f} (target >= {TARGET_SERVER}) -> "
                f"{'MET' if ok else 'MISSED'}"
                + (f"; CPU ratio {cpu:.3f} -> {'MET' if cpu >= TARGET_SERVER else 'MISSED'}" if cpu else "")
            )
    return lines


def render(report: dict) -> str:
    m = report["machine"]
    parts = [
        f"Run on {m['date']}: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"Django {report['django']}; load average at start {m['loadavg_start'][0]:.2f}, "
        f"at end {m.get('loadavg_end', [0])[0]:.2f}.",
        f"Command: ``{report['command']}``",
        "",
    ]
    if report.get("inproc"):
        any_lib = next(iter(report["inproc"].values()))
        parts += [
            f"In-process (WSGIHandler called directly; {any_lib['reps']} repetitions x {any_lib['requests']} "
            f"requests per view, interleaved in batches of {any_lib['batch']}; median time per request; ratio "
            "= protected / login_required per repetition, median (min-max); CPU ratio = the same in process CPU "
            "time (no waiting for the CPU, Redis or the disk); best-batch ratio = the same from each view's fastest "
            "batch (the least disturbed by other load); SQL = statements per request "
            "beyond login_required; cold path = protected view, user with a key who has not verified):",
            "",
            inproc_table(report["inproc"]),
            "",
        ]
        note = middleware_note(report["inproc"])
        if note:
            parts += [note, ""]
        table = ours_table(report["inproc"])
        if table:
            parts += [
                "This tree, in the same processes: an async view behind ``login_required`` (baseline) and behind "
                "the library's protection, through an ASGIHandler on one event loop; and the protected view for "
                "a session signed in through Django's own ModelBackend (baseline: login_required), which reads "
                "the revocation counter with a query of its own:",
                "",
                table,
                "",
            ]
    if report.get("server"):
        s = report["server"]
        parts += [
            f"gunicorn, {s['workers']} sync workers on 127.0.0.1, {s['generator']}, {s['seconds_per_view']:g} s per "
            f"view in {s['rounds']} alternating rounds after {s['warmup']:g} s of warm-up per view; req/s over all "
            "rounds; ratio = protected / login_required, the median of the rounds' ratios; worker CPU/request = "
            "the workers' CPU time per request (login_required / protected, from /proc/PID/schedstat); CPU ratio "
            "= login_required's CPU per request / protected's, the throughput ratio without other load:",
            "",
            server_table(s),
            "",
        ]
    if report.get("verify"):
        parts += [
            "Verification cost, this tree (one POST through the view, test client):",
            "",
            verify_table(report["verify"]),
            "",
        ]
    lines = verdicts(report)
    if lines:
        parts += ["Targets (this tree):", "", *(f"- {line}" for line in lines), ""]
    return "\n".join(parts)


# -- main --------------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description="django-multifactor benchmark", epilog=__doc__)
    parser.add_argument(
        "--only",
        default="inproc,server,verify",
        help="parts to run, comma separated: inproc, server, verify",
    )
    parser.add_argument("--libs", default="ours,mf095,otp")
    parser.add_argument("--engines", default="db,signed_cookies")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--requests", type=int, default=1500, help="per view per repetition")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--server-seconds", type=float, default=10, help="per view, split into rounds")
    parser.add_argument("--server-rounds", type=int, default=10)
    parser.add_argument("--server-warmup", type=float, default=2)
    parser.add_argument("--server-engines", default="db,signed_cookies")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--verify-samples", type=int, default=40)
    parser.add_argument("--django", help="Django version for every venv (default: this Python's)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile of ours' hot path")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests, short server runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.requests, args.verify_samples = 2, 200, 5
        args.server_seconds, args.server_warmup, args.server_rounds = 2, 1, 2
    parts = set(args.only.split(","))
    libs = args.libs.split(",")
    args.engines = args.engines.split(",")
    server_engines = args.server_engines.split(",")

    started = time.time()
    report = {
        "command": "python bench/run.py" + ("".join(f" {a}" for a in (argv or sys.argv[1:]))),
        "machine": machine(),
    }
    needed = set(libs) | ({"ours"} if "verify" in parts else set())
    for lib in venvs.LIBS:
        if lib in needed:
            venvs.ensure(lib, args.django, log=log)
    report["versions"] = {lib: venvs.versions(lib) for lib in venvs.LIBS if lib in needed}
    report["django"] = next(iter(report["versions"].values()))["django"]
    prefix = f"mfbench-{os.getpid()}-{int(time.time())}"
    log(f"[bench] venvs ready ({time.time() - started:.0f} s); load average {os.getloadavg()[0]:.2f}")
    bench_started = time.time()
    if "inproc" in parts:
        report["inproc"] = {lib: run_inproc(lib, args, prefix) for lib in libs}
    if "server" in parts:
        opts = argparse.Namespace(
            seconds=args.server_seconds,
            rounds=args.server_rounds,
            warmup=args.server_warmup,
            connections=args.connections,
            threads=args.threads,
            workers=args.workers,
        )
        report["server"] = server.run(libs, server_engines, opts, prefix, log)
    if "verify" in parts:
        report["verify"] = run_verify(args, prefix)
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["seconds"] = round(time.time() - bench_started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    # A full run is "latest"; a partial one (--only, --libs) is kept beside it under its own name.
    name = "latest"
    if parts != {"inproc", "server", "verify"} or libs != list(venvs.LIBS):
        name += "-" + "-".join(sorted(parts)) + ("" if libs == list(venvs.LIBS) else "-" + "-".join(libs))
    if args.quick:
        name += "-quick"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    text = render(report)
    (RESULTS / f"{name}.rst").write_text(text)
    print(text)
    log(f"[bench] {report['seconds']} s (venvs excluded); wrote {RESULTS / name}.json and {name}.rst")


if __name__ == "__main__":
    main()
