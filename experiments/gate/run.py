"""``asrforge gate``: the performance regression gate CI runs after the tests, an A/B of two commits in one run.

The base commit (``base=auto``: the merge base with main, or the last landed commit on main; any commit with
``base=REV``) is checked out in a git worktree beside the head and runs in its own process with the head's installed
dependencies but its own code; the head (this working tree) runs in another. Both time the same subjects
(``conf/gate.yaml``: this device's benchmark winner, the unoptimised path) on the same files in interleaved trials
on this machine, and the head is judged against the base: slower beyond noise, or a higher WER, is a regression.
Nothing is recorded per processor, so it judges on any CPU or GPU. The ratio to the faster-whisper peer is reported.

Exit status: 0 pass, 1 regression (or the head cannot plan, load or run), 2 only when the base cannot be checked out
or run (said why)::

    asrforge gate                          # make gate
    asrforge gate base=HEAD~3 trials=12 --output /tmp/gate.json
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from rich.console import Console

from asrforge.errors import AsrforgeError
from asrforge.experiments.gate import checkout
from asrforge.experiments.gate.plan import Plan, load_config, plan, selections
from asrforge.experiments.gate.report import append_history, print_report, write_json
from asrforge.experiments.gate.stats import INFO, REGRESSION, Figure, judge_error_rate, judge_speed, log_ratios, overall
from asrforge.experiments.gate.stats import unsure as is_unsure
from asrforge.experiments.gate.trials import BASE, BASE_ONLY, HEAD, TrialRun, Worker, WorkerFailed, run_trials
from asrforge.paths import REPO_ROOT, eval_data_dir

EXIT_PASS, EXIT_REGRESSION, EXIT_CANNOT_JUDGE = 0, 1, 2
RECORDED_SETTINGS = ("files", "reference", "threads", "max_slowdown", "alpha", "wer_tolerance_points")


def judge(gate: Plan, run: TrialRun, sides: dict[str, dict[str, Any]]) -> tuple[list[Figure], dict[str, Any]]:
    """Every figure (speed and WER of each subject both sides run; the ratios to the reference) and, per subject
    and side, what the document keeps."""
    from asrforge.experiments.scoring import score

    cfg = gate.cfg
    figures, subjects = [], {}
    for name in cfg.subjects:
        name = str(name)
        kept = {}
        for side in (HEAD, BASE):
            if (side, name) not in run.seconds:
                continue
            texts = run.texts[side, name]
            random = sides[side][name]["random_weights"]
            wer = None if random else score(gate.references, texts[0], gate.languages).wer
            kept[side] = {
                "runs": {key: sides[side][name][key] for key in ("engine", "plugins")},
                "seconds": run.seconds[side, name],
                "hypotheses": texts[0],
                "deterministic": all(trial == texts[0] for trial in texts),
                "wer": None if wer is None else round(wer, 3),
                "load_s": sides[side][name]["load_s"],
            }
        subjects[name] = kept
        if HEAD in kept and BASE in kept:
            speed = judge_speed(log_ratios(kept[HEAD]["seconds"], kept[BASE]["seconds"]), cfg.max_slowdown, cfg.alpha)
            median = {side: float(np.median(kept[side]["seconds"])) for side in (HEAD, BASE)}
            figures.append(
                Figure(
                    f"{name} speed", "speed", median[BASE], median[HEAD], speed.change, speed.p_slower, speed.verdict
                )
            )
            head_wer, base_wer = kept[HEAD]["wer"], kept[BASE]["wer"]
            change = None if head_wer is None or base_wer is None else head_wer - base_wer
            verdict = judge_error_rate(head_wer, base_wer, cfg.wer_tolerance_points)
            figures.append(Figure(f"{name} WER %", "wer", base_wer, head_wer, change, None, verdict))
    reference = None if cfg.reference is None else run.seconds.get((HEAD, str(cfg.reference)))
    for name, kept in subjects.items():
        if reference and name != cfg.reference and kept:
            ratio = {side: float(np.exp(np.median(log_ratios(kept[side]["seconds"], reference)))) for side in kept}
            figures.append(
                Figure(f"{name} / {cfg.reference}", "peer", ratio.get(BASE), ratio.get(HEAD), None, None, INFO)
            )
    return figures, subjects


def _worker_specs(gate: Plan, base_root: Path) -> dict[str, dict[str, Any]]:
    audio = Path(tempfile.mkdtemp(prefix="asrforge-gate-audio-")) / "audio.npz"
    np.savez(audio, *gate.audio)
    cfg = gate.cfg
    specs = {}
    for side, root in ((HEAD, REPO_ROOT), (BASE, base_root)):
        specs[side] = {
            "subjects": selections(gate, root, head=side == HEAD),
            "device": gate.device,
            "threads": int(cfg.threads),
            "audio": str(audio),
            "slowdown": {"winner": float(cfg.inject_slowdown)} if side == HEAD and cfg.inject_slowdown else {},
        }
    return specs


def measure(gate: Plan, workers: dict[str, Worker], subjects: dict[str, list[str]], console: Console, started: float):
    """The trials, judged; more while a figure is unsure and the budget allows."""
    cfg = gate.cfg

    def on_trial(trial: int) -> None:
        console.print(f"  trial {trial} done ({time.monotonic() - started:.0f} s)", highlight=False)

    ready = {side: worker.ready() for side, worker in workers.items()}
    sides = {
        side: {name: {**about, "load_s": got["load_s"][name]} for name, about in got["subjects"].items()}
        for side, got in ready.items()
    }
    for side, got in ready.items():
        console.print(f"{side} loaded: {', '.join(f'{name} {s:.1f} s' for name, s in got['load_s'].items())}")
    files = len(gate.audio)
    run = run_trials(workers, subjects, files, cfg.trials, warmup_calls=cfg.warmup_calls, on_trial=on_trial)
    figures, kept = judge(gate, run, sides)
    while (
        is_unsure(figures)
        and run.trials + cfg.extend_by <= cfg.max_trials
        and time.monotonic() - started < cfg.time_budget_s
    ):
        console.print(f"unsure: {cfg.extend_by} more trials")
        run = run_trials(workers, subjects, files, cfg.extend_by, run=run, on_trial=on_trial)
        figures, kept = judge(gate, run, sides)
    return figures, kept, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asrforge gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. base=HEAD~2")
    parser.add_argument("--config", type=Path, help="a gate config file (default: the packaged conf/gate.yaml)")
    parser.add_argument("--output", type=Path, help="where to write this run's JSON artefact (default: artefact=)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from asrforge.experiments.bench.run import git_commit
    from asrforge.experiments.device import device_info, versions

    args = _parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    started = time.monotonic()
    try:
        cfg = load_config(args.config, args.overrides)
        gate = plan(cfg)
    except (AsrforgeError, OSError, ValueError) as error:
        console.print(f"asrforge gate: {REGRESSION}: the head cannot plan the gate: {error}")
        return EXIT_REGRESSION
    workers: dict[str, Worker] = {}
    with tempfile.TemporaryDirectory(prefix="asrforge-gate-") as tmp:
        base_root = Path(tmp) / "base"
        try:
            base = checkout.resolve_base(REPO_ROOT, str(cfg.base), str(cfg.main_branch))
            checkout.add_worktree(REPO_ROOT, base.commit, base_root)
            imports = checkout.import_root(base_root, Path(tmp) / "imports")
        except checkout.BaseUnavailable as error:
            console.print(f"asrforge gate: cannot judge: no base to compare with: {error}")
            return EXIT_CANNOT_JUDGE
        try:
            try:
                specs = _worker_specs(gate, base_root)
            except (AsrforgeError, OSError, ValueError) as error:
                console.print(f"asrforge gate: {REGRESSION}: the head cannot plan the gate: {error}")
                return EXIT_REGRESSION
            for note in gate.notes:
                console.print(f"note: {note}")
            console.print(f"asrforge gate: head {git_commit()} vs base {base.commit[:12]} ({base.how}) on {gate.key}")
            path = os.pathsep.join(filter(None, [str(imports), os.environ.get("PYTHONPATH")]))
            base_env = {**os.environ, "PYTHONPATH": path, "ASRFORGE_EVAL_DATA": str(eval_data_dir())}
            base_env[BASE_ONLY] = "1"
            workers = {HEAD: Worker(HEAD, specs[HEAD], REPO_ROOT), BASE: Worker(BASE, specs[BASE], base_root, base_env)}
            subjects = {
                str(name): [side for side in (HEAD, BASE) if str(name) in specs[side]["subjects"]]
                for name in cfg.subjects
                if str(name) in specs[HEAD]["subjects"]
            }
            figures, kept, run = measure(gate, workers, subjects, console, started)
        except WorkerFailed as failure:
            if failure.side == BASE:
                console.print(f"asrforge gate: cannot judge: the base {base.commit[:12]} does not run: {failure}")
                return EXIT_CANNOT_JUDGE
            console.print(f"asrforge gate: {REGRESSION}: {failure}")
            return EXIT_REGRESSION
        finally:
            for worker in workers.values():
                worker.close()
            checkout.remove_worktree(REPO_ROOT, base_root)
    verdict = overall(figures)
    document = {
        "device": device_info(gate.device),
        "versions": versions(),
        "commit": git_commit(),
        "base": {"commit": base.commit, "how": base.how},
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {key: _plain(cfg[key]) for key in RECORDED_SETTINGS} | {"inject_slowdown": cfg.inject_slowdown},
        "subjects": kept,
        "trials": run.trials,
        "foreign_cpu": run.foreign_cpu,
        "figures": [figure.to_dict() for figure in figures],
        "verdict": verdict,
        "notes": gate.notes,
        "wall_s": round(time.monotonic() - started, 3),
    }
    print_report(figures, document, console)
    artefact = write_json(args.output or cfg.artefact, document)
    append_history(cfg.history, document)
    console.print(f"gate: {verdict} in {document['wall_s']:.0f} s; wrote {artefact}")
    return EXIT_REGRESSION if verdict == REGRESSION else EXIT_PASS


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


if __name__ == "__main__":
    raise SystemExit(main())
