"""The regression gate end to end, as CI runs it: the working tree against a base commit checked out in a git
worktree, each in its own process, on one real dev-set file through real Whisper tiny.en. Unchanged code passes;
the head's engine slowed in its decode path (a plugin that keeps the CPU busy) fails; a base that cannot be found is
"cannot judge" (2), a head that cannot plan is a failure (1). A smaller gate than conf/gate.yaml's, to keep the
suite's time: the eager engine (it loads in seconds, the int8 winner does not) and no peer."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from asrforge.experiments.gate import run as gate
from asrforge.experiments.gate.stats import PASS, REGRESSION

SLOWDOWN = 1.0  # far beyond a busy machine's noise in this small gate; 10 % and 15 %: reports/gate/README.md


def small(tmp_path, **overrides) -> list[str]:
    """A config file for a one-file gate of the eager engine, and the command line that runs it."""
    cfg = gate.load_config(
        overrides=[
            "base=HEAD",  # the same code as the working tree in CI's clean clone
            "files=[librispeech_2412-153948-0002.wav]",
            "reference=null",
            "trials=6",
            "max_trials=9",
            "extend_by=3",
            "time_budget_s=100000",  # bounded by trials: a busy machine must not cut the trials a verdict needs
            "alpha=0.05",  # 6 paired trials reach p = 1/64 at best
            f"artefact={tmp_path / 'last.json'}",
            f"history={tmp_path / 'history.jsonl'}",
            *(f"{key}={value}" for key, value in overrides.items()),
        ]
    )
    cfg.subjects = {"winner": {"engine": "whisper-tiny-en", "plugins": ["eval_mode", "sdpa"]}}
    path = tmp_path / "gate.yaml"
    OmegaConf.save(cfg, path)
    return ["--config", str(path)]


@pytest.mark.timeout(900)
def test_unchanged_code_passes_and_a_slowed_head_fails(tmp_path, dev_dir, capsys):
    assert gate.main(small(tmp_path)) == gate.EXIT_PASS
    err = capsys.readouterr().err
    assert "winner speed" in err and "asked for: HEAD" in err
    document = json.loads((tmp_path / "last.json").read_text())
    assert document["verdict"] == PASS and document["trials"] >= 6
    assert document["subjects"]["winner"]["head"]["wer"] == document["subjects"]["winner"]["base"]["wer"] == 0.0

    assert gate.main(small(tmp_path, inject_slowdown=SLOWDOWN)) == gate.EXIT_REGRESSION
    document = json.loads((tmp_path / "last.json").read_text())
    speed = {figure["name"]: figure for figure in document["figures"]}["winner speed"]
    assert speed["verdict"] == REGRESSION and speed["change"] > 0.3 and speed["p_value"] < 0.05
    winner = document["subjects"]["winner"]
    assert winner["head"]["hypotheses"] == winner["base"]["hypotheses"]  # slower, not worse
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 2


def test_no_base_is_cannot_judge_and_a_head_that_cannot_plan_is_a_failure(tmp_path, dev_dir, capsys):
    assert gate.main(small(tmp_path, base="no-such-commit")) == gate.EXIT_CANNOT_JUDGE
    assert "cannot judge" in capsys.readouterr().err
    assert gate.main(small(tmp_path, files="[no-such-file.wav]")) == gate.EXIT_REGRESSION
    assert "no-such-file.wav" in capsys.readouterr().err
