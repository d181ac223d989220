"""reports/gateway/README.md and its plots, rendered from the records of the gateway measurements (the latest record
of each experiment)::

    asrforge report
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from asrforge.experiments import markdown as md  # noqa: E402
from asrforge.experiments.gateway.common import REPORT_DIR, RESULTS, read_records  # noqa: E402

COMMANDS = {
    "rss_burst": "asrforge run gateway rss",
    "kill_under_load": "asrforge run gateway kill",
    "throughput": "asrforge run gateway throughput",
    "ray_serve": "asrforge run gateway ray",
}


def latest(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        found[record["experiment"]] = record
    return found


def plot_rss(record: dict[str, Any], path: Path) -> Path:
    samples = record["samples"]
    t = [s["t_s"] for s in samples]
    gateway = [s["gateway_mb"] for s in samples]
    total = [s["gateway_mb"] + s["workers_mb"] for s in samples]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.fill_between(t, 0, gateway, label="gateway", color="tab:blue", alpha=0.8)
    ax.fill_between(t, gateway, total, label="workers", color="tab:orange", alpha=0.6)
    began, ended = record["burst_window_s"]
    ax.axvspan(began, ended, color="grey", alpha=0.15, label="burst")
    ax.axvline(ended + record["reclaimed_after_s"], color="tab:red", linestyle="--", label="last worker gone")
    ax.set_xlabel("seconds")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(
        f"Gateway + {record['workers']} workers, idle timeout {record['idle_timeout_s']:g} s: "
        f"reclaimed {record['reclaimed_after_s']:g} s after the burst"
    )
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_throughput(record: dict[str, Any], path: Path) -> Path:
    runs = record["runs"]
    labels = [f"{r['config']}\n#{i}" for i, r in enumerate(runs)]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(labels, [r["audio_s_per_s"] for r in runs], color=["tab:grey" if r["config"] == "single" else "tab:green"
                                                              for r in runs])  # fmt: skip
    ax.set_ylabel("audio seconds per second")
    ax.set_title(f"{record['clients']} HTTP clients, {record['cpu_quota']} CPUs (in run order)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _naming(kill: dict[str, Any]) -> str:
    """How many failures name the killed worker (records before that field was kept say so)."""
    if "failed_naming_killed_worker" not in kill:
        return "not recorded"
    return f"{kill['failed_naming_killed_worker']} of {kill['failed']}"


def render_all(root: Path) -> list[Path]:
    """``<root>/gateway/README.md`` and its plots, where the gateway experiments have written records."""
    return render(root / "gateway") if (root / "gateway" / RESULTS).is_file() else []


def render(report_dir: Path = REPORT_DIR) -> list[Path]:
    found = latest(read_records(report_dir))
    written: list[Path] = []
    lines = [
        "# Gateway + workers, and scale-out",
        "",
        f"Rendered by `asrforge report` from `{RESULTS}` (the latest record of each",
        "experiment); never edited by hand. Design and trade-offs: docs/scaling.md. Machine: 2 CPU cores shared with",
        "other jobs, so absolute times are noisy; ratios are within one run.",
        "",
    ]
    if rss := found.get("rss_burst"):
        written.append(plot_rss(rss, report_dir / "rss_burst.png"))
        m = rss["rss_mb"]
        lines += [
            "## Memory before, during and after a burst",
            "",
            f"`{COMMANDS['rss_burst']} --workers {rss['workers']} --idle-timeout {rss['idle_timeout_s']:g}`",
            "",
            "| phase | gateway MiB | workers MiB |",
            md.rule("lrr"),
            f"| before (no worker running) | {m['before']['gateway']} | {m['before']['workers']} |",
            f"| peak during the burst ({m['peak_during']['worker_processes']} worker processes) | "
            f"{m['peak_during']['gateway']} | {m['peak_during']['workers']} |",
            f"| after the idle timeout | {m['after']['gateway']} | {m['after']['workers']} |",
            "",
            f"Burst: {rss['burst']['answered']}/{rss['burst']['requests']} answered by {rss['burst']['clients']} "
            f"clients. Cold starts (process start to /ready): {', '.join(f'{s:.1f} s' for s in rss['cold_starts_s'])}. "
            f"Reclamation: the last worker was gone {rss['reclaimed_after_s']} s after the burst's last answer "
            f"(idle timeout {rss['idle_timeout_s']:g} s + the reaper's poll + shutdown).",
            "",
            "![RSS over time](rss_burst.png)",
            "",
        ]
    if kill := found.get("kill_under_load"):
        lines += [
            "## Kill -9 of a worker under load",
            "",
            f"`{COMMANDS['kill_under_load']} --clients {kill['clients']} --duration {kill['duration_s']:g}`",
            "",
            "| requests | answered | answers matching the lone request | failed | of them 503 (+Retry-After) | "
            "SSE error events | other failures | hung clients | recovery (kill to restarted /ready) |",
            md.rule("r" * 9),
            f"| {kill['requests']} | {kill['answered']} | {kill['matching_lone_request']} | {kill['failed']} | "
            f"{kill['failed_503']} ({kill['failed_503_with_retry_after']} HTTP with Retry-After) | "
            f"{kill['failed_sse_error_event']} | {kill['failed_other']} | {kill['hung_clients']} | "
            f"{kill['recovery_s']} s |",
            "",
            f"Worker 0 was killed {kill['kill_at_s']} s into the load; the last failure came "
            f"{kill['failures_after_kill_s']} s after the kill. Failures naming the killed worker in their 503 or "
            f"SSE error event: {_naming(kill)}; failures before the kill: {kill.get('failed_before_kill', 'n/a')} "
            "(a 503 for a plain request, an error event for an SSE stream whose 200 had already gone out).",
            "",
        ]
        if kill["failed_other_examples"]:
            lines += ["Other failures: " + "; ".join(kill["failed_other_examples"]), ""]
    if tput := found.get("throughput"):
        written.append(plot_throughput(tput, report_dir / "throughput.png"))
        lines += [
            "## Throughput: 1, 2, 4 CPU workers against the single process",
            "",
            f"`{COMMANDS['throughput']} --clients {tput['clients']} --duration {tput['duration_s']:g}`",
            "",
            "| run | configuration | threads/process | audio s per s | ratio to single | answers (matching) | "
            "failed | foreign CPU |",
            md.rule("rl" + "r" * 6),
        ]
        for index, run in enumerate(tput["runs"]):
            lines.append(
                f"| {index} | {run['label']} | {run['threads_per_process']} | {run['audio_s_per_s']} | "
                f"{run['ratio_to_single']} | {run['answered']} ({run['matching_lone_request']}) | {run['failed']} | "
                f"{run['foreign_cpu_share']} |"
            )
        lines += [
            "",
            f"The single-process runs spread over {tput['single_spread']} audio s/s: differences inside that "
            "spread are noise. On 2 cores the model already uses both (intra-op threads), so more processes can "
            "only overlap the per-request Python work (decoding the upload, VAD, HTTP) with inference.",
            "",
            "![throughput](throughput.png)",
            "",
        ]
    if ray := found.get("ray_serve"):
        lines += [
            "## Ray Serve serving the same requests",
            "",
            f"`{COMMANDS['ray_serve']} --clients {ray['clients']} --duration {ray['duration_s']:g} "
            f"--max-replicas {ray['max_replicas']}` (Ray {ray['ray']}, a local cluster of {ray['cpus']} CPUs)",
            "",
            "| requests (http/sse/ws) | answered | matching the single server's answer | failed | replicas seen "
            "| audio s per s | start-up |",
            md.rule("r" * 7),
            f"| {ray['requests']} ({'/'.join(str(v) for v in ray['by_kind'].values())}) | {ray['answered']} | "
            f"{ray['matching_lone_request']} | {ray['failed']} | {ray['max_replicas_seen']} (max "
            f"{ray['max_replicas']}) | {ray['audio_s_per_s']} | {ray['startup_s']} s |",
            "",
            "Replicas over time (s, running): "
            + ", ".join(
                f"{t:g}:{n}" for t, n in ray["replicas_over_time"][:: max(1, len(ray["replicas_over_time"]) // 15)]
            ),
            "",
        ]
        if ray["failures"]:
            lines += ["Failures: " + "; ".join(ray["failures"]), ""]
    readme = report_dir / "README.md"
    readme.write_text("\n".join(lines))
    return [readme, *written]
