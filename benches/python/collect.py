"""Merges the per-workload outputs of scripts/bench.sh into one results JSON, with medians
and ratios, draws the PNG charts beside it and prints a Markdown summary."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# grpc_nocache: the sidecar's gRPC Query on a pool with statement_cache_size = 0, i.e.
# every query prepared anew (the hot path before the statement cache), in the same run.
# direct_fair: direct with a FIFO queue for the bb8 pool's connections (loadgen --fair).
# grpc_unix / flight_unix: the same daemon and pool over its Unix domain socket
# (server.extra_listen) instead of loopback TCP; left out with BENCH_UNIX=0.
# grpc_dirty: gRPC Query where every 10th query changes its session (loadgen
# --dirty-every 10), so the daemon resets that connection; grpc_always: a pool with
# reset_sessions = "always" (issue 17, clean sessions).
MODES = ("grpc", "flight", "grpc_nocache", "grpc_dirty", "grpc_always", "direct", "direct_fair", "pgbouncer")
UNIX_MODES = ("grpc_unix", "flight_unix")


def machine() -> dict:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"
    )
    mem = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": round(mem / 2**20, 1),
        "kernel": platform.release(),
        "loadavg_at_end": os.getloadavg(),
    }


def small(path: Path) -> dict:
    pts: dict = defaultdict(list)
    for line in path.read_text().splitlines():
        r = json.loads(line)
        pts[(r["mode"], r["clients"])].append(r)
    out: dict = {}
    for (mode, clients), runs in sorted(pts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        keys = ("qps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "cpu_ms_per_query")
        med = {k: statistics.median(r[k] for r in runs) for k in keys if all(k in r for r in runs)}
        # Fairness: mean and worst latency, and the fewest / most queries one client
        # completed in the least even run (0: a client waited the whole window for a
        # connection, which no percentile shows).
        if all("mean_ms" in r for r in runs):
            med["mean_ms"] = statistics.median(r["mean_ms"] for r in runs)
            med["max_ms"] = max(r["max_ms"] for r in runs)
            # The least even run: its fewest and most queries of one client.
            worst = min(runs, key=lambda r: r["client_queries_min"] / max(r["client_queries_max"], 1))
            med["client_queries_min"] = worst["client_queries_min"]
            med["client_queries_max"] = worst["client_queries_max"]
        srv = [r["server_cpu_ms_per_query"] for r in runs if r.get("server_cpu_ms_per_query") is not None]
        med["server_cpu_ms_per_query"] = statistics.median(srv) if srv else None
        pg = [r["postgres_cpu_ms_per_query"] for r in runs if r.get("postgres_cpu_ms_per_query") is not None]
        med["postgres_cpu_ms_per_query"] = statistics.median(pg) if pg else None
        # Everything one query cost on this machine: load generator, daemon or PgBouncer,
        # PostgreSQL.
        med["total_cpu_ms_per_query"] = round(
            med["cpu_ms_per_query"] + (med["server_cpu_ms_per_query"] or 0) + (med["postgres_cpu_ms_per_query"] or 0),
            3,
        )
        med["errors"] = sum(r["errors"] for r in runs)
        med["runs"] = runs
        out.setdefault(str(clients), {})[mode] = med
    # Ratios: the median over repetitions of the ratio within one repetition (the modes of
    # one repetition ran back to back), which cancels most of the drift in machine load.
    for modes in out.values():
        for mode in UNIX_MODES:
            tcp = mode.removesuffix("_unix")
            if mode in modes and tcp in modes:
                tcp_qps = {r.get("rep"): r["qps"] for r in modes[tcp]["runs"]}
                ratios = [r["qps"] / tcp_qps[r.get("rep")] for r in modes[mode]["runs"] if r.get("rep") in tcp_qps]
                modes[mode]["qps_vs_tcp"] = round(statistics.median(ratios), 2)
        for mode in ("grpc", "flight", "grpc_nocache", "grpc_dirty", "grpc_always", "direct_fair", *UNIX_MODES):
            if mode in modes:
                for peer in ("direct", "pgbouncer"):
                    if peer in modes:
                        peer_qps = {r.get("rep"): r["qps"] for r in modes[peer]["runs"]}
                        ratios = [
                            r["qps"] / peer_qps[r.get("rep")]
                            for r in modes[mode]["runs"]
                            if r.get("rep") in peer_qps
                        ]
                        modes[mode][f"qps_vs_{peer}"] = round(statistics.median(ratios), 2)
    return out


def charts(res: dict, out: Path) -> list[str]:
    files = []
    s = res["small_queries"]
    clients = sorted(s, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    shown = [*MODES, *(m for m in UNIX_MODES if any(m in s[c] for c in clients))]
    width = 0.8 / len(shown)
    for i, mode in enumerate(shown):
        xs = [c + (i - (len(shown) - 1) / 2) * width for c in range(len(clients))]
        axes[0].bar(xs, [s[c].get(mode, {}).get("qps", 0) for c in clients], width, label=mode)
        axes[1].bar(xs, [s[c].get(mode, {}).get("p99_ms", 0) for c in clients], width, label=mode)
    for ax, title in zip(axes, ("QPS (median)", "p99 latency, ms (median)")):
        ax.set_xticks(range(len(clients)), [f"{c} clients" for c in clients])
        ax.set_title(title)
    axes[0].legend()
    fig.suptitle("Small queries (SELECT … WHERE id = $1), pool of 20")
    fig.tight_layout()
    f = out.with_name(out.stem + "-small.png")
    fig.savefig(f, dpi=90)
    files.append(f.name)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    rd = {k: v for k, v in res["read_polars"].items() if "seconds" in v}
    axes[0].bar(list(rd), [v["seconds"] for v in rd.values()], color="tab:blue")
    axes[0].set_title(f"Read {res['params']['wide_rows']:,} rows x 10 cols into Polars, s")
    mem = {k: v for k, v in rd.items() if "rss_peak_mb" in v}
    axes[1].bar(list(mem), [v["rss_growth_mb"] for v in mem.values()], label="peak RSS growth")
    axes[1].bar(
        list(mem), [v.get("buffers_mb", 0) for v in mem.values()], width=0.6, label="frame's Arrow buffers"
    )
    axes[1].bar(
        list(mem), [v["estimated_size_mb"] for v in mem.values()], width=0.3, label="frame estimated_size"
    )
    axes[1].set_title("Client memory, MB")
    axes[1].legend()
    ins = {k: v for k, v in res["bulk_insert"].items() if isinstance(v, dict)}
    axes[2].bar(list(ins), [v["seconds"] for v in ins.values()], color="tab:green")
    axes[2].set_title(f"Insert {res['bulk_insert']['rows']:,} rows, s")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    f = out.with_name(out.stem + "-bulk.png")
    fig.savefig(f, dpi=90)
    files.append(f.name)
    return files


def summary(res: dict) -> str:
    nan = float("nan")
    lines = [
        "| clients | mode | QPS | p50 ms | p90 ms | p99 ms | p99.9 ms | mean ms | max ms | queries per client (min–max) "
        "| loadgen CPU ms/q | server CPU ms/q | PostgreSQL CPU ms/q | total CPU ms/q | vs direct | vs PgBouncer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c, modes in sorted(res["small_queries"].items(), key=lambda kv: int(kv[0])):
        for m in (*MODES, *UNIX_MODES):
            if m not in modes:
                continue
            r = modes[m]
            srv = "" if r["server_cpu_ms_per_query"] is None else f"{r['server_cpu_ms_per_query']:.3f}"
            pg = "" if r.get("postgres_cpu_ms_per_query") is None else f"{r['postgres_cpu_ms_per_query']:.3f}"
            fair = (
                f"{r['mean_ms']:.2f} | {r['max_ms']:,.0f} | {r['client_queries_min']:,}–{r['client_queries_max']:,}"
                if "mean_ms" in r
                else " | | "
            )
            lines.append(
                f"| {c} | {m} | {r['qps']:,.0f} | {r['p50_ms']:.2f} | {r.get('p90_ms', nan):.2f} | "
                f"{r['p99_ms']:.2f} | {r.get('p999_ms', nan):.2f} | {fair} | "
                f"{r['cpu_ms_per_query']:.3f} | {srv} | {pg} | {r['total_cpu_ms_per_query']:.3f} | "
                f"{r.get('qps_vs_direct', '')} | {r.get('qps_vs_pgbouncer', '')} |"
            )
    lines += [
        "",
        "| read tool | s | peak RSS MB | RSS growth MB | frame buffers MB | estimated_size MB "
        "| growth / buffers | growth / estimated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, v in res["read_polars"].items():
        if "seconds" in v:
            growth, buf, est = (v.get(f, nan) for f in ("rss_growth_mb", "buffers_mb", "estimated_size_mb"))
            lines.append(
                f"| {k} | {v['seconds']:.2f} | {v.get('rss_peak_mb', nan):.0f} | {growth:.0f} | {buf:.0f} | "
                f"{est:.0f} | {growth / buf:.2f} | {growth / est:.2f} |"
            )
        else:
            lines.append(f"| {k} | failed | | | | | | |")
    lines += ["", "| stream rows | s | daemon RSS baseline MB | max MB |", "|---|---|---|---|"]
    for r in res["stream_rss"]:
        lines.append(
            f"| {r['rows']:,} | {r['seconds']:.1f} | {r['daemon_rss_baseline_mb']:.0f} | {r['daemon_rss_max_mb']:.0f} |"
        )
    lines += ["", "| insert tool | s | rows/s |", "|---|---|---|"]
    for k, v in res["bulk_insert"].items():
        if isinstance(v, dict):
            lines.append(f"| {k} | {v['seconds']:.2f} | {v['rows_per_s']:,.0f} |")
    lines += ["", "| Python small queries | tasks/threads | tool | QPS | p50 ms | p99 ms | QPS ratio |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for name, points in res.get("python_small_queries", {}).items():
        for conc, point in sorted(points.items(), key=lambda kv: int(kv[0])):
            for tool, r in point.items():
                if not isinstance(r, dict):
                    continue
                ratio = point["qps_ratio"] if tool == point["compares"].split(" / ")[0] else ""
                if "qps" in r:
                    lines.append(
                        f"| {name} | {conc} | {tool} | {r['qps']:,.0f} | {r['p50_ms']:.3f} | "
                        f"{r['p99_ms']:.3f} | {ratio} |"
                    )
                else:
                    lines.append(f"| {name} | {conc} | {tool} | failed | | | |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--quick", type=int, default=0)
    p.add_argument("--duration", type=float)
    p.add_argument("--reps", type=int)
    p.add_argument("--read-reps", type=int)
    a = p.parse_args()
    work = Path(a.work)
    read = json.loads((work / "read.json").read_text())
    res = {
        "machine": machine(),
        "params": {
            "quick": bool(a.quick),
            "duration_s": a.duration,
            "reps": a.reps,
            "read_reps": a.read_reps,
            "wide_rows": next((v["rows"] for v in read.values() if "rows" in v), None),
        },
        "small_queries": small(work / "small.jsonl"),
        "read_polars": read,
        "stream_rss": json.loads((work / "stream.json").read_text()),
        "bulk_insert": json.loads((work / "insert.json").read_text()),
        "python_small_queries": json.loads((work / "pyquery.json").read_text()),
    }
    out = Path(a.out)
    res["charts"] = charts(res, out)
    out.write_text(json.dumps(res, indent=1) + "\n")
    md = summary(res)
    out.with_suffix(".md").write_text(md + "\n")
    print(md)
    bad = problems(res)
    if bad:
        raise SystemExit("benchmark problems (results written all the same):\n  " + "\n  ".join(bad))


def problems(res: dict) -> list[str]:
    """What makes a run unusable: a tool that failed, tools that read different row
    counts, a small-query mode with no result. The smoke run in scripts/test.sh fails on
    these, so the harness cannot rot quietly."""
    out = [f"read with {k} failed" for k, v in res["read_polars"].items() if "seconds" not in v]
    rows = {k: v["rows"] for k, v in res["read_polars"].items() if "rows" in v}
    if len(set(rows.values())) > 1:
        out.append(f"the read tools got different row counts: {rows}")
    for clients, modes in res["small_queries"].items():
        out += [f"no {m} result at {clients} clients" for m in MODES if m not in modes]
    for name, points in res["python_small_queries"].items():
        for conc, point in points.items():
            for t, r in point.items():
                if isinstance(r, dict) and "qps" not in r:
                    out.append(f"Python {name} with {t} x{conc} failed")
                elif isinstance(r, dict) and r.get("errors"):
                    out.append(f"Python {name} with {t} x{conc} had errors")
    return out


if __name__ == "__main__":
    main()
