"""faster-whisper as its README shows it, as one command: ``python peer.py --threads N FILE...`` prints each file's
text. It has no command-line tool of its own; this is the few lines a user of it writes. The weights are the same
tiny.en CTranslate2 int8 files our peer row uses; ``transcribe`` keeps faster-whisper's defaults (beam 5 with
temperature fallback, previous-text conditioning), which is our served policy (conf/decode/fallback.yaml)."""

import argparse

from faster_whisper import WhisperModel

from asrforge.engines.whisper_ct2 import ct2_model_dir  # NumPy-only: imports no torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    model = WhisperModel(str(ct2_model_dir("tiny.en")), device="cpu", compute_type="int8", cpu_threads=args.threads)
    for path in args.files:
        segments, _ = model.transcribe(path)
        print("".join(segment.text for segment in segments).strip())


if __name__ == "__main__":
    main()
