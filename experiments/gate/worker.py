"""One side of the gate's A/B: a process that loads the subjects from one checkout's code and times single calls on
request. Run as a script (``python worker.py SPEC.json``) so that whichever ``asrforge`` its ``PYTHONPATH`` maps
(the head's install, or the base's import folder, ``checkout.py``) is the code measured; it therefore imports only
what every commit of the project has had: ``Combination``, ``DecodeOptions`` and ``BaseEngine.transcribe``.

Protocol: one JSON object per line. The worker writes ``{"ready": ...}`` (or ``{"error": ...}``) once its subjects
are loaded, then answers each ``{"call": subject, "file": index}`` read from stdin with ``{"s": seconds, "text":
..., "cpu_s": this process's CPU seconds so far}``. The protocol uses the original stdout; anything the libraries
print goes to stderr, which the gate keeps for the error message.
"""

import json
import os
import sys
import time
import traceback

sys.path.pop(0)  # this script's folder: its sibling modules must not shadow anything
BASE_ONLY = "ASRFORGE_GATE_BASE_ONLY"  # set for the base's worker


def isolate() -> None:
    """Drop the editable install's finder: it maps ``asrforge.*`` names to the head's folders, and would otherwise
    supply any module the base's import folder lacks with the head's code instead of failing."""
    sys.meta_path[:] = [
        finder for finder in sys.meta_path if not str(getattr(finder, "__module__", "")).startswith("__editable__")
    ]


def _load(spec: dict) -> tuple[dict, dict, dict]:
    import torch

    from asrforge.combination import Combination

    torch.set_num_threads(int(spec["threads"]))
    engines, load_s, described = {}, {}, {}
    for name, subject in spec["subjects"].items():
        if "option" in subject:
            combination = Combination.named(subject["option"], subject["plugins"], **subject["overrides"])
        else:
            combination = Combination(
                engine=subject["engine"], plugins=subject["plugins"], settings=subject.get("settings") or {}
            )
        combination.engine = {**combination.engine, "device": spec["device"]}
        started = time.perf_counter()
        engine = combination.load()
        slowdown = (spec.get("slowdown") or {}).get(name)
        if slowdown:  # the gate's evidence and its test: a known slowdown, injected into the head only
            from asrforge.experiments.gate.slowdown import SlowDecode
            from asrforge.optimizations import compose

            engine = compose(engine, [SlowDecode(factor=float(slowdown))])
        engines[name] = engine
        load_s[name] = round(time.perf_counter() - started, 3)
        described[name] = {
            "engine": {key: combination.engine.get(key) for key in ("_target_", "model", "dtype", "device")},
            "plugins": list(getattr(engine, "applied_plugins", combination.plugins)),
            "random_weights": bool(getattr(engine, "random_weights", False)),
        }
    return engines, load_s, described


def main() -> int:
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # library prints go to stderr
    sys.stdout = sys.stderr
    if os.environ.get(BASE_ONLY):
        isolate()
    with open(sys.argv[1], encoding="utf-8") as file:
        spec = json.load(file)
    try:
        import numpy as np
        import torch

        from asrforge.engines.base import DecodeOptions

        with np.load(spec["audio"]) as stored:
            audio = [stored[f"arr_{index}"] for index in range(len(stored.files))]
        engines, load_s, described = _load(spec)
    except Exception as error:  # any failure to import or load is reported to the gate, which decides what it means
        traceback.print_exc()
        protocol.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
        return 1
    protocol.write(json.dumps({"ready": {"load_s": load_s, "subjects": described}}) + "\n")
    # The gate decodes greedily (DecodeOptions() in every commit); the bench's head-to-head sends its policy.
    options = DecodeOptions.from_mapping(spec["decode"]) if spec.get("decode") else DecodeOptions()
    for line in sys.stdin:
        request = json.loads(line)
        engine = engines[request["call"]]
        cuda = torch.device(engine.device).type == "cuda"
        if cuda:
            torch.cuda.synchronize(engine.device)
        started = time.perf_counter()
        (transcript,) = engine.transcribe([audio[request["file"]]], options)
        if cuda:
            torch.cuda.synchronize(engine.device)
        seconds = time.perf_counter() - started
        own = os.times()
        reply = {"s": seconds, "text": transcript.text, "cpu_s": own.user + own.system}
        protocol.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
