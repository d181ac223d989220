"""``asrforge bench``: measure latency and WER of every row of a matrix on one dataset, each row in its own process,
then write ``<report.dir>/<device>/results.jsonl``, its README and plots, and ``<report.dir>/winner.yaml``.

Every row decodes with one decoding policy (the ``decode`` config group: ``fallback`` = faster-whisper's default,
``beam5``, ``greedy``), the peer row included, so every speed ratio compares like with like. The winner is picked
at that policy on the dataset's tuning part (experiments/bench/winner.py); then the peer, the baseline and the winner
are run again at each of ``bench.compare_policies``, rows named ``<row>@<policy>``. On a CPU the winner and the peer
then meet head to head, call by call at 1 thread and at the quota (``bench.head_to_head``, head_to_head.py).

A Hydra app over the packaged configs (``conf/bench.yaml``), so overrides, ``--multirun`` sweeps and launchers work::

    asrforge bench                                   # whisper-tiny-en, dev set, CPU matrix, faster-whisper's policy
    asrforge bench decode=greedy bench.compare_policies=[]   # the whole matrix greedy, nothing else
    asrforge bench dataset=zh engine=qwen3-asr-tiny dataset.limit=3
    asrforge bench --multirun bench.batch_size=1,4
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.config import CONFIG_MODULE, decode_policy, group_options, load_option
from asrforge.cpu import cpu_quota
from asrforge.devices import device_key
from asrforge.experiments.bench import head_to_head
from asrforge.experiments.bench import matrix as matrix_rows
from asrforge.experiments.bench.clips import register_clip_resolver
from asrforge.experiments.bench.records import RESULTS, BenchRecord, merge_records, read_records, write_records
from asrforge.experiments.bench.report import BUSY_HOST, write_report
from asrforge.experiments.bench.run_row import RowSpec, run_in_subprocess
from asrforge.experiments.bench.winner import select_winner, update_winner
from asrforge.experiments.datasets import Dataset, load_manifest, register_resolvers
from asrforge.experiments.device import device_info, versions
from asrforge.experiments.jsonl import append_jsonl
from asrforge.optimizations import Target, combination_refusal, make_plugins
from asrforge.paths import REPO_ROOT
from asrforge.winner import GPU_FALLBACK, WINNER_FILE

log = logging.getLogger(__name__)
register_resolvers()
register_clip_resolver()


@dataclass(frozen=True)
class RunContext:
    cfg: DictConfig
    engine_option: str | None  # the conf/engine option the run's rows use by default
    engine_node: dict[str, Any]
    target: Target  # the run's engine, device and dtype: what combinations are checked against
    dataset: Dataset
    common: dict[str, Any]  # fields every record of the run shares
    policy: str  # the conf/decode option every matrix row decodes with ("custom" if it matches none)
    decode: dict[str, Any]  # DecodeOptions fields of that policy, with bench.decode's per-run extras (language...)


def run_bench(cfg: DictConfig, engine_option: str | None = None, console: Console | None = None) -> list[BenchRecord]:
    """Run the matrix ``cfg.matrix`` and write the reports; returns this run's records."""
    console = console or Console(stderr=True, soft_wrap=True)
    engine_node = OmegaConf.to_container(cfg.engine, resolve=True)
    target = Target.from_config(instantiate(engine_node, _convert_="all"))
    key = device_key(target.device)
    dataset = load_manifest(cfg.dataset.manifest, cfg.dataset.name, cfg.dataset.get("limit"))
    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    policy = OmegaConf.to_container(cfg.decode, resolve=True) if "decode" in cfg else decode_policy("greedy")
    tune = (cfg.dataset.get("split") or {}).get("tune")
    ctx = RunContext(
        cfg=cfg,
        engine_option=engine_option,
        engine_node=engine_node,
        target=target,
        dataset=dataset,
        common={
            "device": device_info(target.device),
            "dataset": {
                "name": dataset.name,
                "manifest": dataset.display_manifest,
                "files": len(dataset),
                **({"tune": list(tune)} if tune else {}),
            },
            "batch_size": cfg.bench.batch_size,
            "passes": cfg.bench.passes,
            "run_id": run_id,
            "commit": git_commit(),
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(),
        },
        policy=policy_name(policy),
        decode={**policy, **OmegaConf.to_container(cfg.bench.decode, resolve=True)},
    )
    rows = matrix_rows.expand(cfg.matrix)
    # A matrix can turn the automatic combination off (its explicit combos already cover what was measured best).
    auto_combine = bool(cfg.matrix.get("auto_combine", cfg.bench.auto_combine))
    compare = [name for name in cfg.bench.get("compare_policies") or () if name != ctx.policy]
    console.print(
        f"asrforge bench: run {run_id}, {len(rows)} rows at decode={ctx.policy} (then peer, baseline and winner at "
        f"{', '.join(compare) or 'no other policy'}), {dataset.name} ({len(dataset)} files), device {key}"
    )
    records: list[BenchRecord] = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        rows_task = progress.add_task("rows", total=len(rows) + int(auto_combine))
        files_task = progress.add_task("files", total=len(dataset) * cfg.bench.passes)
        for row in rows:
            records.append(_run_row(ctx, row, progress, files_task))
            _keep(ctx, key, records[-1])
            progress.advance(rows_task)
        if auto_combine:
            best = matrix_rows.auto_best(
                rows,
                records,
                lambda names: combination_refusal(ctx.target, make_plugins(names, cfg.optimizations)),
                cfg.bench.wer_tolerance_points,
                cfg.bench.min_gain,
            )
            if best is None:
                console.print("auto-best: fewer than two singles beat the baseline within the WER tolerance; no row")
                progress.update(rows_task, total=len(rows))
            else:
                records.append(_run_row(ctx, best, progress, files_task))
                _keep(ctx, key, records[-1])
                progress.advance(rows_task)
        if compare:
            again = _rows_to_compare(rows, records, cfg.bench.wer_tolerance_points)
            progress.update(rows_task, total=progress.tasks[rows_task].total + len(again) * len(compare))
            for name in compare:
                decode = {**decode_policy(name), **OmegaConf.to_container(cfg.bench.decode, resolve=True)}
                for row in again:
                    renamed = matrix_rows.Row(f"{row.name}@{name}", row.plugins, row.engine, row.reference)
                    records.append(_run_row(ctx, renamed, progress, files_task, (name, decode)))
                    _keep(ctx, key, records[-1])
                    progress.advance(rows_task)
    if records and ctx.target.device_type == "cpu":
        _head_to_head(ctx, key, rows, records, console)
    _write_outputs(ctx, key, records, console)
    if not any(record.measured for record in records):
        raise RuntimeError("no row of the matrix produced a measurement; see the errors in the report")
    return records


def policy_name(policy: dict[str, Any]) -> str:
    """The conf/decode option whose fields ``policy`` has, or "custom"."""
    return next((name for name in group_options("decode") if decode_policy(name) == policy), "custom")


def _rows_to_compare(
    rows: list[matrix_rows.Row], records: list[BenchRecord], tolerance_points: float
) -> list[matrix_rows.Row]:
    """The rows run again at each other policy: the peer(s), the baseline and this run's winner."""
    winner = select_winner(records, tolerance_points)
    names = {record.row for record in records if record.reference} | {matrix_rows.BASELINE}
    if winner is not None:
        names.add(winner.row)
    known = {row.name: row for row in rows}
    if winner is not None and winner.row not in known:  # auto-best
        known[winner.row] = matrix_rows.Row(winner.row, tuple(winner.combination.get("requested_plugins") or ()))
    return [known[name] for name in known if name in names]


def _head_to_head(
    ctx: RunContext, key: str, rows: list[matrix_rows.Row], records: list[BenchRecord], console: Console
) -> None:
    """The winner against the peer row, call by call, at each of ``bench.head_to_head.threads``; appends records."""
    settings = OmegaConf.to_container(ctx.cfg.bench.get("head_to_head") or {}, resolve=True)
    winner = select_winner(records, ctx.cfg.bench.wer_tolerance_points)
    peer = next((row for row in rows if row.reference and row.engine), None)
    if not settings.get("threads") or winner is None or peer is None:
        return
    combination = winner.combination
    subject = {
        "engine": combination["engine_config"],
        "plugins": combination["plugins"],
        "settings": combination.get("settings") or {},
    }
    audio = [load_audio(utterance.audio) for utterance in ctx.dataset.utterances]
    for threads in settings["threads"]:
        count = cpu_quota() if threads == "quota" else int(threads)
        console.print(f"head to head at {count} thread(s): {winner.row} vs {peer.name}, {len(audio)} files a trial")
        body = head_to_head.measure(
            subject,
            peer.engine,
            audio,
            ctx.decode,
            count,
            settings,
            lambda trial, ratio: console.print(f"  trial {trial}: winner/peer {ratio:.3f}"),
        )
        record = {**ctx.common, "policy": ctx.policy, "winner": winner.row, "peer": peer.name, **body}
        append_jsonl(Path(ctx.cfg.report.dir) / key / head_to_head.HEAD_TO_HEAD, [record])
        value = body["ratio"]
        console.print(
            f"  {count} thread(s): winner/peer {value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}] "
            f"over {body['trials']} trials; p50 {body['p50_ms']['winner']:.0f} vs {body['p50_ms']['peer']:.0f} ms"
        )


def _run_row(
    ctx: RunContext,
    row: matrix_rows.Row,
    progress: Progress,
    files_task: Any,
    policy: tuple[str, dict[str, Any]] | None = None,
) -> BenchRecord:
    """Measure one row at the run's decoding policy, or at ``policy`` (name, DecodeOptions fields)."""
    engine_option = row.engine or ctx.engine_option
    policy_label, decode = policy or (ctx.policy, ctx.decode)
    combination: dict[str, Any] = {
        "row": row.name,
        "engine_option": engine_option,
        "requested_plugins": list(row.plugins),
    }
    record = BenchRecord(
        combination=combination, reference=row.reference, policy=policy_label, decode=decode, **ctx.common
    )
    record.dataset = dict(record.dataset)
    progress.update(files_task, description=f"{row.name}: checking", completed=0)
    try:
        node = ctx.engine_node if row.engine is None else _engine_option(row.engine, ctx.engine_node)
        config = instantiate(node, _convert_="all")
        if "architecture" in node and getattr(config, "architecture", None) is None:
            node = {key: value for key, value in node.items() if key != "architecture"}  # a checkpoint: not random
        settings = {name: _plugin_settings(ctx.cfg, name) for name in row.plugins}
        combination.update(
            engine=config.engine,
            engine_config=node,
            model=node.get("model"),
            plugins=list(row.plugins),
            settings=settings,
        )
        record.refused = combination_refusal(Target.from_config(config), make_plugins(row.plugins, settings))
    except Exception as exc:  # a config mistake in one row must not stop the others
        record.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if record.refused or record.error:
        progress.console.print(f"  {row.name}: {_summary(record)}")
        return record

    def on_event(event: dict) -> None:
        if event.get("event") == "stage":
            progress.update(
                files_task,
                description=f"{row.name}: {event['stage']}",
                **({"total": event["total"]} if "total" in event else {}),
            )
        elif event.get("event") == "progress":
            progress.update(files_task, completed=event["done"])

    bench = ctx.cfg.bench
    spec = RowSpec(
        row=row.name,
        combination=Combination(engine=node, plugins=list(row.plugins), settings=settings),
        manifest=str(ctx.dataset.manifest),
        dataset=ctx.dataset.name,
        limit=ctx.cfg.dataset.get("limit"),
        batch_size=bench.batch_size,
        passes=bench.passes,
        warmup_calls=bench.warmup_calls,
        decode=decode,
        decoder_floor=bool(bench.get("decoder_floor", False)),
    )
    measurement = run_in_subprocess(spec, bench.row_timeout_s, on_event)
    _fill(record, measurement)
    progress.console.print(f"  {row.name}: {_summary(record)}")
    log.info("%s: %s", row.name, _summary(record))
    return record


def _engine_option(name: str, run_engine: dict[str, Any]) -> dict[str, Any]:
    """A row's own conf/engine option (inside the Hydra app through its search path, so user config dirs count too),
    on the run's device when the run names one (``engine.device=cpu`` on a GPU machine moves the peer row too)."""
    if GlobalHydra.instance().is_initialized():
        node = compose(config_name="bench", overrides=[f"engine={name}"]).engine
    else:
        node = load_option("engine", name)
    node = OmegaConf.to_container(node, resolve=True)
    if run_engine.get("device", "auto") != "auto":
        node["device"] = run_engine["device"]
    return node


def _plugin_settings(cfg: DictConfig, name: str) -> dict[str, Any]:
    node = cfg.optimizations.get(name) if "optimizations" in cfg else None
    return OmegaConf.to_container(node if node is not None else load_option("optimizations", name)[name], resolve=True)


def _fill(record: BenchRecord, measurement: dict[str, Any]) -> None:
    combination = record.combination
    combination["engine"] = measurement.pop("engine", combination.get("engine"))
    combination["model"] = measurement.pop("model", combination.get("model"))
    combination["plugins"] = measurement.pop("plugins", combination.get("plugins"))
    record.dataset.update(measurement.pop("dataset", {}))
    for name, value in measurement.items():
        setattr(record, name, value)


def _summary(record: BenchRecord) -> str:
    if record.refused or record.error:
        return f"refused: {record.refused}" if record.refused else f"error: {record.error}"
    wer = "n/a" if record.wer is None else f"{record.wer:.2f} %"
    overhead = record.overhead_s or {}
    busy = f" [busy host: {record.foreign_cpu:.0%} foreign CPU]" if (record.foreign_cpu or 0.0) > BUSY_HOST else ""
    return (
        f"p50 {record.p50:.1f} ms, first call {record.first_call_ms:.0f} ms, load {record.load_s:.2f} s, "
        f"apply {record.apply_s:.2f} s, WER {wer}, row {overhead.get('wall', 0):.1f} s "
        f"(harness {overhead.get('startup', 0) + overhead.get('audio_decode', 0):.1f} s){busy}"
    )


def _keep(ctx: RunContext, key: str, record: BenchRecord) -> None:
    """Merge one finished row into the results file at once: a run stopped by a time limit keeps its measured rows
    (the reports, plots and winner are written when the run ends)."""
    results = Path(ctx.cfg.report.dir) / key / RESULTS
    results.parent.mkdir(parents=True, exist_ok=True)
    write_records(results, merge_records(read_records(results), [record]))


def _write_outputs(ctx: RunContext, key: str, records: list[BenchRecord], console: Console) -> None:
    root = Path(ctx.cfg.report.dir)
    device_dir = root / key  # results.jsonl already holds every row (_keep)
    device_dir.mkdir(parents=True, exist_ok=True)
    run_id = ctx.common["run_id"]
    (device_dir / "config.yaml").write_text(
        f"# The composed config of run {run_id} (asrforge bench); rerun with the same values to reproduce it.\n"
        + OmegaConf.to_yaml(ctx.cfg),
        encoding="utf-8",
    )
    winner = select_winner(records, ctx.cfg.bench.wer_tolerance_points)
    if winner is None:
        console.print("winner: none (no measured baseline, or no row within the WER tolerance)")
    elif ctx.cfg.bench.update_winner:
        entry, replaced = update_winner(root / WINNER_FILE, key, winner)
        if key != "cpu":
            update_winner(root / WINNER_FILE, GPU_FALLBACK, winner)
        if replaced:
            console.print(f"winner for {key}: {entry['row']} ({', '.join(entry['plugins']) or 'no plugins'})")
        else:
            console.print(
                f"winner for {key} kept: {entry['row']} of run {entry['run_id']} has real weights, "
                f"this run's {winner.row} does not"
            )
    for path in write_report(device_dir):
        console.print(f"wrote {path}")


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the checkout, with ``-dirty`` if code differs from it (reports/ aside); or
    ``$ASRFORGE_COMMIT`` where it is set: a copy of the working tree sent to another host (the GPU session) can carry
    git metadata older than its files."""
    if os.environ.get("ASRFORGE_COMMIT"):
        return os.environ["ASRFORGE_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":(exclude)reports"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if status else "")


@hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name="bench", version_base="1.3")
def _hydra_app(cfg: DictConfig) -> None:
    run_bench(cfg, engine_option=HydraConfig.get().runtime.choices.get("engine"))


def main(argv: Sequence[str]) -> int:
    """``asrforge run bench [key=value ...] [--multirun]`` (Hydra overrides of conf/bench.yaml), or
    ``asrforge run bench transfer-overlap [--out FILE]`` (the copy/compute overlap of this GPU's streams)."""
    if argv and argv[0] == "transfer-overlap":
        from asrforge.experiments.bench.transfer_overlap import main as transfer_overlap

        return transfer_overlap(argv[1:])
    # Hydra parses sys.argv itself (overrides, --multirun, --cfg ...), so hand it the rest of the command line.
    sys.argv = ["asrforge run bench", *argv]
    _hydra_app()
    return 0


if __name__ == "__main__":  # `python -m asrforge.experiments.bench.run ...`: where the package is not pip-installed
    sys.exit(main(sys.argv[1:]))
