"""schemathesis, driven by the app's own OpenAPI spec, finds no 5xx (and the spec documents what users need)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx


def test_the_spec_documents_every_parameter_format_and_error(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    operation = spec["paths"]["/v1/audio/transcriptions"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    ref = form["$ref"].rsplit("/", 1)[-1]
    fields = set(spec["components"]["schemas"][ref]["properties"])
    assert {"file", "model", "language", "prompt", "response_format", "temperature", "stream"} <= fields
    assert "timestamp_granularities[]" in fields
    assert {"application/json", "text/plain", "application/x-subrip", "text/vtt", "text/event-stream"} <= set(
        operation["responses"]["200"]["content"]
    )
    assert {"400", "401", "404", "413", "429"} <= set(operation["responses"])
    assert {"VerboseTranscription", "ErrorResponse", "TextDeltaEvent"} <= set(spec["components"]["schemas"])
    assert httpx.get(server.url + "/docs").status_code == 200


def test_schemathesis_finds_no_server_error(server, tmp_path):
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    result = subprocess.run(
        [
            cli, "run", f"{server.url}/openapi.json",
            "--checks", "not_a_server_error",
            "--max-examples", "25",
            "--phases", "examples,coverage,fuzzing",
            "--generation-deterministic",
            "--request-timeout", "120",
            "--workers", "1",
        ],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
