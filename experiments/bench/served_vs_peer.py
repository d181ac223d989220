"""The served default against faster-whisper's default on the test part alone, decoding policy by policy.

``python -m asrforge.experiments.bench.served_vs_peer [policy ...]`` (default: fallback greedy) decodes the dev set's
test part (the files outside ``split.tune``) with the CPU winner of ``reports/winner.yaml`` and with the faster-whisper
peer at each policy, prints each one's corpus WER with its 95 % bootstrap interval, the files with errors, and the
paired difference winner - peer. A quick check that needs no full matrix run; the bench report is the record.
"""

from __future__ import annotations

import sys

from asrforge.audio import load_audio
from asrforge.config import decode_policy, tuning_files
from asrforge.engines.base import DecodeOptions
from asrforge.engines.faster_whisper import FasterWhisperConfig, FasterWhisperEngine
from asrforge.experiments.bench.bootstrap import corpus_rate, paired_difference
from asrforge.experiments.datasets import load_manifest
from asrforge.experiments.scoring import file_counts
from asrforge.paths import eval_data_dir
from asrforge.winner import load_winner


def main(policies: list[str]) -> None:
    tune = tuning_files("dev") or frozenset()
    dataset = load_manifest(eval_data_dir() / "dev" / "manifest.jsonl", "dev")
    test = [u for u in dataset.utterances if u.audio.name not in tune]
    audio = [load_audio(u.audio) for u in test]
    engines = {"peer": FasterWhisperEngine(FasterWhisperConfig(device="cpu")), "winner": load_winner("cpu").load()}
    for policy in policies:
        options = DecodeOptions.from_mapping(decode_policy(policy))
        counts = {}
        for name, engine in engines.items():
            hypotheses = [engine.transcribe([clip], options)[0].text for clip in audio]
            counts[name] = [file_counts(u.text, h, u.language) for u, h in zip(test, hypotheses, strict=True)]
            rate = corpus_rate(*zip(*counts[name], strict=True))
            print(f"{name}@{policy}: test WER {rate.value:.2f} [{rate.low:.2f}, {rate.high:.2f}] ({len(test)} files)")
            for u, h, (errors, _) in zip(test, hypotheses, counts[name], strict=True):
                if errors:
                    print(f"    {u.audio.name}: {errors} errors: {h}")
        words = [w for _, w in counts["peer"]]
        d = paired_difference([e for e, _ in counts["winner"]], [e for e, _ in counts["peer"]], words)
        print(f"winner - peer @{policy}: {d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}] points (paired bootstrap)")


if __name__ == "__main__":
    main(sys.argv[1:] or ["fallback", "greedy"])
