"""The regression gate on real engines: the committed CPU winner and the faster-whisper peer on one real dev-set file
(a smaller gate than conf/gate.yaml's, to keep the suite's time). The unchanged code passes against a baseline it just
measured; the same engine slowed down in its decode path (a plugin that keeps the CPU busy) fails; and the command
does what CI needs: a table, an artefact, a history line, exit statuses, and a baseline refused once the winner
changed."""

from __future__ import annotations

import io
import json

import yaml
from omegaconf import OmegaConf
from rich.console import Console

from asrforge.experiments import gate
from asrforge.experiments.gate_slowdown import SlowDecode
from asrforge.experiments.gate_stats import PASS, REGRESSION
from asrforge.experiments.gate_trials import load_subjects
from asrforge.optimizations import compose
from asrforge.paths import REPO_ROOT

SLOWDOWN = 0.3  # beyond a busy machine's noise in this small gate; the full gate on 15 %: reports/gate/README.md


def small_config(tmp_path, winner_file=REPO_ROOT / "reports" / "winner.yaml", **overrides):
    cfg = gate.load_config(
        overrides=[
            "files=[librispeech_2412-153948-0002.wav]",
            f"winner_file={winner_file}",
            f"baseline_file={tmp_path / '{device}' / 'gate_baseline.json'}",
            f"artefact={tmp_path / 'last.json'}",
            f"history={tmp_path / 'history.jsonl'}",
            *(f"{key}={value}" for key, value in overrides.items()),
        ]
    )
    cfg.subjects.pop("baseline")  # the winner against the peer is enough to show the mechanism
    return cfg


def test_unchanged_code_passes_and_a_slowed_decode_fails(tmp_path, dev_dir):
    # Bounded by trials, not time: on a busy machine a time budget would cut the extra trials an unsure figure needs.
    cfg = small_config(tmp_path, baseline_trials=8, trials=6, max_trials=12, extend_by=3, time_budget_s=10**6)
    plan = gate.plan(cfg)
    engines, _ = load_subjects(plan.combinations, cfg.threads)
    console = Console(file=io.StringIO())

    baseline, none = gate.measure(plan, engines, None, console)
    assert none == [] and len(baseline["subjects"]["winner"]["log_ratios"]) == 8
    assert baseline["subjects"]["winner"]["wer"] == 0.0 and baseline["subjects"]["winner"]["deterministic"]
    assert baseline["subjects"]["peer"]["log_ratios"] is None

    _, unchanged = gate.measure(plan, engines, baseline, console)
    assert {figure.name: figure.verdict for figure in unchanged} == {
        "winner / peer": PASS,
        "winner WER %": PASS,
        "peer WER %": PASS,
    }, unchanged

    compose(engines["winner"], [SlowDecode(factor=SLOWDOWN)])
    slowed, figures = gate.measure(plan, engines, baseline, console)
    by_name = {figure.name: figure for figure in figures}
    assert by_name["winner / peer"].verdict == REGRESSION, figures
    assert by_name["winner / peer"].change > 0.15 and by_name["winner / peer"].p_value < cfg.alpha
    assert by_name["winner WER %"].verdict == PASS  # slower, not worse: the transcript is the same
    assert slowed["subjects"]["winner"]["hypotheses"] == baseline["subjects"]["winner"]["hypotheses"]


def test_the_command_writes_a_baseline_then_judges_and_refuses_it_once_the_winner_changed(tmp_path, dev_dir, capsys):
    winners = yaml.safe_load((REPO_ROOT / "reports" / "winner.yaml").read_text())
    winner_file = tmp_path / "winner.yaml"
    winner_file.write_text(yaml.safe_dump(winners))
    cfg = small_config(tmp_path, winner_file=winner_file, baseline_trials=3, trials=3, max_trials=3)
    config = tmp_path / "gate.yaml"
    OmegaConf.save(cfg, config)
    baseline_file = tmp_path / "cpu" / "gate_baseline.json"

    assert gate.main(["--config", str(config)]) == gate.EXIT_CANNOT_JUDGE  # no baseline yet
    assert "make gate-update" in capsys.readouterr().err

    assert gate.main(["--config", str(config), "--update"]) == gate.EXIT_PASS
    baseline = json.loads(baseline_file.read_text())
    winner = baseline["subjects"]["winner"]
    assert winner["selection"]["plugins"] == winners["cpu"]["plugins"]  # which winner it measured, and from where
    assert winner["winner"]["row"] == winners["cpu"]["row"] and winner["winner"]["run_id"] == winners["cpu"]["run_id"]
    assert len(winner["seconds"]) == 3 and baseline["device"]["key"] == "cpu"

    artefact = tmp_path / "run.json"
    assert gate.main(["--config", str(config), "--output", str(artefact)]) == gate.EXIT_PASS
    err = capsys.readouterr().err
    assert "winner / peer" in err and "winner WER %" in err and "verdict" in err
    document = json.loads(artefact.read_text())
    assert document["verdict"] == PASS and document["baseline_file"] == str(baseline_file)
    assert {figure["name"] for figure in document["figures"]} == {"winner / peer", "winner WER %", "peer WER %"}
    (history,) = (tmp_path / "history.jsonl").read_text().splitlines()
    assert json.loads(history)["verdict"] == PASS

    # A new `make bench` picked another winner: the baseline measured something else, and the gate fails before it
    # measures, naming both rows and the command that records the new one.
    winners["cpu"] |= {"row": "sdpa", "run_id": "later-run", "plugins": ["eval_mode", "sdpa"], "settings": {}}
    winner_file.write_text(yaml.safe_dump(winners))
    assert gate.main(["--config", str(config)]) == gate.EXIT_REGRESSION
    err = capsys.readouterr().err
    assert (
        "subject 'winner'" in err and "later-run" in err and baseline["subjects"]["winner"]["winner"]["run_id"] in err
    )
    assert "make gate-update" in err and "trial" not in err
