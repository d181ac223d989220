"""``reports/cpu/shrink.md`` and one curve per lever and thread count (``shrink_<lever>_<N>t.png``), rendered
from ``shrink.jsonl``.

``asrforge report`` (or ``python -m asrforge.experiments.shrink.report``) re-renders from the records alone. Per
lever, the latest run: each setting's speed as the median over (file, trial) of its latency over the reference
setting's on the same file in the same trial (interleaved, so shared-machine load cancels), its WER on the tuning and
the test part, the test WER per clip-length band, the files whose transcript changed, and the long-form verdict; then
the curve (WER on the test part against the speed ratio) and the setting the tolerance admits, picked on the tuning
part only.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from asrforge.experiments.jsonl import read_jsonl  # noqa: E402
from asrforge.experiments.scoring import score  # noqa: E402

BANDS = ((0, 5), (5, 10), (10, 20), (20, float("inf")))  # clip length bands, seconds
BENCH_CONF = Path(__file__).resolve().parents[2] / "conf" / "bench.yaml"
YES_NO = {True: "yes", False: "no", None: "n/a"}


def tolerance_points() -> float:
    """The WER rise the winner search tolerates (conf/bench.yaml), used here for the same verdict."""
    return float(OmegaConf.load(BENCH_CONF).bench.wer_tolerance_points)


def wer(records: Sequence[dict]) -> float | None:
    if not records:
        return None
    return score([r["reference"] for r in records], [r["text"] for r in records], ["en"] * len(records)).wer


def speed_ratio(records: Sequence[dict], setting: str, reference: str) -> float | None:
    """Median over (file, trial) of this setting's latency / the reference setting's latency, same file and trial."""
    by_key = {(r["file"], r["trial"], r["setting"]): r["latency_ms"] for r in records if r["dataset"] == "dev"}
    ratios = [
        by_key[(file, trial, setting)] / by_key[(file, trial, reference)]
        for (file, trial, name) in by_key
        if name == setting and (file, trial, reference) in by_key
    ]
    return statistics.median(ratios) if ratios else None


def summarise(records: Sequence[dict]) -> list[dict]:
    """One row per setting of one run: speed ratio, WER per part and band, changed files, long-form verdict."""
    reference = next(r["setting"] for r in records if r["reference_setting"])
    settings = sorted({r["setting"] for r in records}, key=lambda name: (name != reference, _natural(name)))
    first = [r for r in records if r["trial"] == 0]
    ref_text = {r["file"]: r["text"] for r in first if r["setting"] == reference}
    rows = []
    for setting in settings:
        dev = [r for r in first if r["setting"] == setting and r["dataset"] == "dev"]
        long = [r for r in first if r["setting"] == setting and r["dataset"] == "long"]
        test = [r for r in dev if r["part"] == "test"]
        rows.append(
            {
                "setting": setting,
                "reference": setting == reference,
                "speed_ratio": speed_ratio(records, setting, reference),
                "wer_tuning": wer([r for r in dev if r["part"] == "tuning"]),
                "wer_test": wer(test),
                "wer_bands": [wer([r for r in test if lo <= r["duration_s"] < hi]) for lo, hi in BANDS],
                "changed": sum(r["text"] != ref_text.get(r["file"]) for r in dev),
                "files": len(dev),
                "long_wer": wer(long),
                "long_same": all(r["text"] == ref_text.get(r["file"]) for r in long) if long else None,
                "load_avg": statistics.fmean(r["load_avg_1m"] for r in records if r["setting"] == setting),
            }
        )
    return rows


def admitted(rows: Sequence[dict], tolerance: float) -> dict | None:
    """The fastest setting whose tuning-part WER is within ``tolerance`` points of the reference's (test not read)."""
    base = next(row for row in rows if row["reference"])
    ok = [
        row
        for row in rows
        if not row["reference"]
        and row["wer_tuning"] is not None
        and row["wer_tuning"] <= base["wer_tuning"] + tolerance
    ]
    return min(ok, key=lambda row: row["speed_ratio"] or 1.0) if ok else None


def _natural(name: str) -> list:
    """Sort key reading the numbers in a setting's name as numbers ("3 heads" before "12 heads")."""
    parts = re.split(r"(\d+(?:\.\d+)?)", name)
    return [(0, float(part), "") if part[:1].isdigit() else (1, 0.0, part) for part in parts]


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_lever(lever: str, threads: int, records: Sequence[dict], out_dir: Path, tolerance: float) -> list[str]:
    rows = summarise(records)
    first = records[0]
    device = first["device"]
    tuning = sorted({r["file"] for r in records if r["part"] == "tuning" and r["dataset"] == "dev"})
    test = sorted({r["file"] for r in records if r["part"] == "test" and r["dataset"] == "dev"})
    trials = 1 + max(r["trial"] for r in records)
    bands = " | ".join(f"test WER {lo}-{hi} s" if hi != float("inf") else f"test WER {lo}+ s" for lo, hi in BANDS)
    lines = [
        f"## {lever}, {threads} thread(s)",
        "",
        f"Run {first['run_id']} at commit `{first['commit']}`: {device['cpu']}, {first['threads']} torch thread(s), "
        f"{trials} interleaved trial(s) over {len(tuning) + len(test)} dev files ({len(tuning)} tuning, {len(test)} "
        f"test); mean 1-min load average during the run {_fmt(statistics.fmean(r['load_avg_1m'] for r in records), 1)}"
        f" on {device['cpu_count']} CPUs (shared machine: read the ratios, not absolute times)."
        + (
            f" Every setting capped at {first['max_new_tokens']} new tokens per window (broken settings loop)."
            if first.get("max_new_tokens")
            else ""
        ),
        "",
        f"| setting | speed (latency / winner's) | WER tuning % | WER test % | {bands} | transcripts changed "
        "| long-form WER % | long-form identical |",
        "|---|---|---|---|" + "---|" * len(BANDS) + "---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setting']}{' (reference)' if row['reference'] else ''} | {_fmt(row['speed_ratio'], 3)} "
            f"| {_fmt(row['wer_tuning'])} | {_fmt(row['wer_test'])} | "
            + " | ".join(_fmt(value) for value in row["wer_bands"])
            + f" | {row['changed']}/{row['files']} | {_fmt(row['long_wer'])} | {YES_NO[row['long_same']]} |"
        )
    pick = admitted(rows, tolerance)
    base = next(row for row in rows if row["reference"])
    pruned = {
        r["setting"]: r["plugin_settings"]["attention_heads"]["prune"]
        for r in records
        if "attention_heads" in (r.get("plugin_settings") or {})
    }
    if pruned:
        lines += ["", "Heads pruned (module: head indices):", ""]
        lines += [f"- {name}: " + "; ".join(f"`{m}` {h}" for m, h in heads.items()) for name, heads in pruned.items()]
    lines += [
        "",
        f"Within the tolerance ({tolerance:g} WER points over the winner on the tuning part, conf/bench.yaml): "
        + (
            f"**{pick['setting']}** at {_fmt(pick['speed_ratio'], 3)}x the winner's latency; on the test part its WER "
            f"is {_fmt(pick['wer_test'])} % against {_fmt(base['wer_test'])} %."
            if pick
            else "no setting."
        ),
        "",
        f"![{lever}](shrink_{lever}_{threads}t.png)",
        "",
    ]
    _plot(f"{lever}, {threads} thread(s)", rows, out_dir / f"shrink_{lever}_{threads}t.png")
    return lines


def _plot(lever: str, rows: Sequence[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        if row["speed_ratio"] is None or row["wer_test"] is None:
            continue
        ax.scatter(row["speed_ratio"], row["wer_test"], color="black" if row["reference"] else "tab:blue")
        ax.annotate(row["setting"], (row["speed_ratio"], row["wer_test"]), fontsize=7)
    ax.set_xlabel("latency / winner's (median over files and trials)")
    ax.set_ylabel("WER on the test part (%)")
    ax.set_title(lever)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render(records: Sequence[dict], out_dir: Path) -> str:
    tolerance = tolerance_points()
    by_lever: dict[tuple[str, int], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for record in records:  # the latest run of each lever at each thread count
        by_lever[(record["lever"], record["threads"])][record["run_id"]].append(record)
    lines = [
        "# Shrinking Whisper on a CPU: one curve per lever",
        "",
        "Rendered from `shrink.jsonl` by `python -m asrforge.experiments.shrink.report` (records written by "
        "`python -m asrforge.experiments.shrink.run LEVER`); do not edit by hand. Every setting is the CPU winner "
        "(eval_mode, sdpa, int8_dynamic, cached_logit_masks) plus the lever, measured against the winner alone in "
        "the same run. Greedy decoding, timestamps on, real Whisper tiny.en weights. The tuning/test split is "
        "`experiments/shrink/split.py` (by file-name hash); choices read the tuning part only.",
        "",
        "The winner search (`asrforge bench`, conf/matrix/cpu.yaml) sees the levers as the singles `encoder_window`, "
        "`decoder_layers` and `attention_heads` and the combinations `cpu-int8-window` and `cpu-lean-int8-heads`; it "
        "admits a row only within its WER tolerance, so a lossy lever becomes the served default only where its WER "
        "holds. Attention heads are ranked on the tuning part alone (experiments/shrink/heads.py: the rise in the "
        "teacher-forced loss of the model's own transcripts when one head is masked; word-timing heads never "
        "pruned). Merged decoder layers (`decoder_layers`' `merge`: a dropped layer averaged into a kept neighbour, "
        "BaldWhisper's merge) are measured without the distillation BaldWhisper retrains them with. Not measured "
        "here: a distilled decoder (not trained: the only speech on these machines is the "
        "evaluation set, four minutes of it in the tuning part), the pruned decoder as a draft for assisted "
        "decoding (tried by hand only: identical output, slower, as the draft re-runs the encoder and costs 3/4 of "
        "the target per token).",
        "",
    ]
    for (lever, threads), runs in sorted(by_lever.items()):
        latest = max(runs)
        lines += render_lever(lever, threads, runs[latest], out_dir, tolerance)
    return "\n".join(lines)


def write_report(records_path: str | Path) -> Path:
    path = Path(records_path)
    out = path.with_suffix(".md")
    out.write_text(render(read_jsonl(path), path.parent), encoding="utf-8")
    return out


def render_all(root: str | Path = "reports") -> list[Path]:
    """``asrforge report``: re-render ``<root>/cpu/shrink.md`` and its curves where the records are committed."""
    records = Path(root) / "cpu" / "shrink.jsonl"
    if not records.is_file():
        return []
    report = write_report(records)
    return [report, *sorted(report.parent.glob("shrink_*.png"))]


if __name__ == "__main__":
    print(write_report("reports/cpu/shrink.jsonl"))
