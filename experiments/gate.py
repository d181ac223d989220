"""``asrforge gate``: the performance regression gate CI runs after the tests.

A small fixed benchmark (``conf/gate.yaml``: a few dev-set files through this device's benchmark winner, the
unoptimised path and the faster-whisper peer, each loaded once) compared with the committed baseline
``reports/<device>/gate_baseline/<machine>.json``. Speed is judged as each subject's time relative to the peer's in
the same interleaved trials, so a slower machine or a busy neighbour moves both; WER on the files is judged exactly.
Prints a table, writes a JSON artefact and a history line, and exits 1 on a regression or on a baseline of another
winner than ``reports/winner.yaml`` names now (2 when it cannot judge)::

    asrforge gate                      # make gate
    asrforge gate --update             # make gate-update: measure anew and rewrite the baseline
    asrforge gate device=cuda trials=12 --output /tmp/gate.json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from asrforge.combination import Combination
from asrforge.config import conf_dir
from asrforge.devices import device_key, slug
from asrforge.engines.base import BaseEngine
from asrforge.errors import AsrforgeError, ConfigError
from asrforge.experiments.datasets import load_manifest, register_resolvers
from asrforge.experiments.device import device_info, versions
from asrforge.experiments.gate_report import (
    BUSY,
    append_history,
    busy_share,
    print_report,
    read_json,
    write_json,
)
from asrforge.experiments.gate_stats import REGRESSION, log_ratios
from asrforge.experiments.gate_trials import TrialRun, extend, load_subjects, run_trials
from asrforge.experiments.gate_verdict import Figure, judge, overall, staleness, unsure
from asrforge.experiments.scoring import score
from asrforge.optimizations import application_order, make_plugins
from asrforge.winner import read_winners

EXIT_PASS, EXIT_REGRESSION, EXIT_CANNOT_JUDGE = 0, 1, 2


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/gate.yaml`` (or ``path``) with ``key=value`` overrides."""
    register_resolvers()
    cfg = OmegaConf.load(path or conf_dir() / "gate.yaml")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))


@dataclass
class Plan:
    """What a gate run measures, resolved from its config before anything loads."""

    cfg: DictConfig
    device: str  # cpu, cuda, cuda:N
    key: str  # the report folder of the device: cpu, nvidia-h100-80gb-hbm3
    machine: str  # the processor, as a slug: intel-r-xeon-r-processor, nvidia-h100-80gb-hbm3
    combinations: dict[str, Combination]
    selections: dict[str, dict[str, Any]]  # per subject, what conf/gate.yaml and winner.yaml asked for
    winners: dict[str, dict[str, Any]]  # per winner subject: which benchmark run and row it came from
    audio: list[np.ndarray]
    references: list[str]
    languages: list[str | None]

    @property
    def baseline_path(self) -> Path:
        return Path(str(self.cfg.baseline_file).format(device=self.key, machine=self.machine))


def plan(cfg: DictConfig) -> Plan:
    """Resolve the device, the subjects' combinations and the files; raises ``ConfigError`` on a mistake."""
    from asrforge.audio import load_audio

    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    key = device_key(device)
    if cfg.reference not in cfg.subjects:
        raise ConfigError(f"the gate's reference {cfg.reference!r} is not one of its subjects")
    combinations, selections, winners = {}, {}, {}
    for name, spec in cfg.subjects.items():
        name = str(name)
        if spec.get("winner"):
            entry = read_winners(cfg.winner_file).get(key)
            if not entry:
                raise ConfigError(
                    f"{cfg.winner_file} has no winner for {key}: run `asrforge bench` on this device first"
                )
            selections[name] = {field: entry.get(field) for field in ("engine", "plugins", "settings")}
            winners[name] = {field: entry.get(field) for field in ("row", "run_id", "commit", "timestamp")}
            combination = Combination(
                engine=dict(entry["engine"]), plugins=list(entry["plugins"]), settings=dict(entry.get("settings") or {})
            )
        else:
            plugins = list(spec.get("plugins") or ())
            overrides = dict(spec.get("overrides") or {})
            selections[name] = {"engine_option": str(spec.engine), "plugins": plugins, "overrides": overrides}
            combination = Combination.named(spec.engine, plugins, **overrides)
        combination.engine = {**combination.engine, "device": device}
        combinations[name] = combination
    dataset = load_manifest(cfg.manifest)
    by_name = {utterance.audio.name: utterance for utterance in dataset.utterances}
    missing = [name for name in cfg.files if name not in by_name]
    if missing:
        raise ConfigError(f"not in {dataset.manifest}: {', '.join(missing)}")
    utterances = [by_name[name] for name in cfg.files]
    return Plan(
        cfg=cfg,
        device=device,
        key=key,
        machine=slug(device_info(device)["name"]),
        combinations=combinations,
        selections=selections,
        winners=winners,
        audio=[load_audio(utterance.audio) for utterance in utterances],
        references=[utterance.text for utterance in utterances],
        languages=[utterance.language for utterance in utterances],
    )


def identity(plan: Plan) -> dict[str, Any]:
    """What a baseline must have measured to judge this plan: the files, the reference, and every subject's
    ``selection`` (the winner's entry in winner.yaml, or the engine option and plugins named in conf/gate.yaml).
    Also recorded, not compared: the combination as it runs (plugins in the order they apply) and, for the winner,
    the benchmark run and row it came from."""
    subjects = {}
    for name, combination in plan.combinations.items():
        plugins = application_order(make_plugins(combination.plugins, combination.settings or None))
        subjects[name] = {
            "selection": plan.selections[name],
            "combination": {"engine": dict(combination.engine), "plugins": [plugin.name for plugin in plugins]},
        }
        if name in plan.winners:
            subjects[name]["winner"] = plan.winners[name]
    config = {"files": list(plan.cfg.files), "reference": plan.cfg.reference, "threads": plan.cfg.threads}
    return {"config": config, "subjects": subjects}


def gate_document(
    plan: Plan, engines: Mapping[str, BaseEngine], run: TrialRun, commit: str | None = None
) -> dict[str, Any]:
    """This run as the baseline file and the artefact store it."""
    cfg = plan.cfg
    reference = run.seconds[cfg.reference]
    subjects = identity(plan)["subjects"]
    for name, subject in subjects.items():
        random_weights = bool(getattr(engines[name], "random_weights", False))
        wer = None if random_weights else score(plan.references, run.hypotheses[name], plan.languages).wer
        subject |= {
            "seconds": run.seconds[name],
            "log_ratios": None if name == cfg.reference else log_ratios(run.seconds[name], reference),
            "wer": None if wer is None else round(wer, 3),
            "hypotheses": run.hypotheses[name],
            "deterministic": run.deterministic[name],
            "load_s": run.load_s.get(name),
            "weights": engines[name].weights,
        }
    return {
        "device": device_info(plan.device),
        "versions": versions(),
        "commit": commit,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {
            "files": list(cfg.files),
            "reference": cfg.reference,
            "threads": cfg.threads,
            "max_slowdown": cfg.max_slowdown,
            "alpha": cfg.alpha,
            "wer_tolerance_points": cfg.wer_tolerance_points,
        },
        "subjects": subjects,
        "foreign_cpu": run.foreign_cpu,
        "wall_s": run.wall_s,
    }


def measure(
    plan: Plan,
    engines: Mapping[str, BaseEngine],
    baseline: Mapping[str, Any] | None,
    console: Console,
    started: float | None = None,
    commit: str | None = None,
) -> tuple[dict[str, Any], list[Figure]]:
    """Run the trials (``baseline_trials`` without a baseline), judge, and add rounds while a figure is unsure and
    the budget allows. Returns this run's document and its figures (none without a baseline)."""
    cfg = plan.cfg
    started = time.monotonic() if started is None else started

    def on_trial(trial: int) -> None:
        console.print(f"  trial {trial} done ({time.monotonic() - started:.0f} s)", highlight=False)

    count = cfg.trials if baseline is not None else cfg.baseline_trials
    run = run_trials(engines, plan.audio, count, cfg.warmup_calls, on_trial=on_trial)
    document = gate_document(plan, engines, run, commit)
    if baseline is None:
        return document, []
    figures = judge(document, baseline, cfg)
    while (
        unsure(figures)
        and len(run.foreign_cpu) + cfg.extend_by <= cfg.max_trials
        and time.monotonic() - started < cfg.time_budget_s
    ):
        console.print(f"unsure: {cfg.extend_by} more trials")
        more = run_trials(engines, plan.audio, cfg.extend_by, 0, on_trial=on_trial, first_trial=len(run.foreign_cpu))
        run = extend(run, more)
        document = gate_document(plan, engines, run, commit)
        figures = judge(document, baseline, cfg)
    return document, figures


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asrforge gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. trials=12")
    parser.add_argument("--config", type=Path, help="a gate config file (default: the packaged conf/gate.yaml)")
    parser.add_argument("--update", action="store_true", help="measure anew and rewrite the baseline file")
    parser.add_argument("--output", type=Path, help="where to write this run's JSON artefact (default: artefact=)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from asrforge.experiments.bench.run import git_commit

    args = _parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)
    started = time.monotonic()
    try:
        cfg = load_config(args.config, args.overrides)
        gate = plan(cfg)
        baseline = None if args.update else read_json(gate.baseline_path)
        if baseline is None and not args.update:
            console.print(
                f"asrforge gate: no baseline for this machine ({device_info(gate.device)['name']}) at "
                f"{gate.baseline_path}: speed ratios do not carry across processor models; `make gate-update` "
                "measures one here"
            )
            return EXIT_CANNOT_JUDGE
        stale = None if baseline is None else staleness(identity(gate), baseline)
        if stale:
            console.print(f"asrforge gate: {REGRESSION}: {stale} (`make gate-update` if that change is deliberate)")
            return EXIT_REGRESSION
        console.print(
            f"asrforge gate: {', '.join(gate.combinations)} on {gate.key}, {len(cfg.files)} files"
            + (" (measuring a new baseline)" if args.update else f", against {gate.baseline_path}")
        )
        engines, load_s = load_subjects(gate.combinations, cfg.threads)
    except (AsrforgeError, FileNotFoundError, ValueError) as error:
        console.print(f"asrforge gate: {error}")
        return EXIT_CANNOT_JUDGE
    console.print(f"loaded in {', '.join(f'{name} {seconds:.1f} s' for name, seconds in load_s.items())}")
    document, figures = measure(gate, engines, baseline, console, started, git_commit())
    for name, seconds in load_s.items():
        document["subjects"][name]["load_s"] = seconds
    document["wall_s"] = round(time.monotonic() - started, 3)
    if args.update:
        path = write_json(gate.baseline_path, document)
        console.print(f"wrote the baseline {path} ({document['wall_s']:.0f} s)")
        busy = busy_share(document)
        if busy is not None and busy > BUSY:
            console.print(
                f"[yellow]note: other processes used {busy:.0%} of the CPU meanwhile; the ratios move with the load, "
                "so a baseline from a quiet machine judges best (reports/gate/README.md, Limits)[/]"
            )
        return EXIT_PASS
    verdict = overall(figures)
    document.update(
        baseline_file=str(gate.baseline_path),
        baseline_commit=baseline.get("commit"),
        figures=[figure.to_dict() for figure in figures],
        verdict=verdict,
    )
    print_report(figures, document, baseline, console)
    artefact = write_json(args.output or cfg.artefact, document)
    append_history(cfg.history, document)
    console.print(f"gate: {verdict} in {document['wall_s']:.0f} s; wrote {artefact}")
    return EXIT_REGRESSION if verdict == REGRESSION else EXIT_PASS


if __name__ == "__main__":
    raise SystemExit(main())
