"""One dispatch for every study: `asrforge run <study>` and `asrforge report`."""

from __future__ import annotations

import shutil

from asrforge.cli import main
from asrforge.experiments import STUDIES, render_reports
from asrforge.paths import REPO_ROOT


def test_every_committed_report_re_renders_byte_for_byte_from_its_records(tmp_path):
    root = tmp_path / "reports"
    shutil.copytree(REPO_ROOT / "reports", root)
    written = render_reports(root)
    folders = {path.relative_to(root).parts[0] for path in written}
    assert {"cpu", "serving", "gateway"} <= folders  # bench, load and gateway reports; streaming etc. live in cpu/
    names = {path.name for path in written}
    assert {"README.md", "streaming.md", "subtitles.md", "translation.md", "partials.md"} <= names
    for path in written:
        assert path.read_bytes() == (REPO_ROOT / "reports" / path.relative_to(root)).read_bytes(), path


def test_run_names_the_studies_when_the_study_is_unknown(capsys):
    assert main(["run", "no-such-study"]) == 2
    usage = capsys.readouterr().err
    assert all(study in usage for study in STUDIES)


def test_the_gateway_study_lists_its_experiments(capsys):
    assert main(["run", "gateway"]) == 2
    assert "throughput" in capsys.readouterr().err


def test_a_study_parses_its_own_options_under_run(capsys):
    try:
        main(["run", "streaming", "--help"])
    except SystemExit as done:
        assert done.code == 0
    assert "asrforge run streaming" in capsys.readouterr().out
