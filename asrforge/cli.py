"""The ``asrforge`` command: transcribe files, serve the API, run a study (``asrforge run <study>``), re-render
every study's reports (``asrforge report``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from asrforge.errors import AsrforgeError, ConfigError, RefusedCombinationError, UnsupportedOptionError
from asrforge.quiet import quiet_third_party

if TYPE_CHECKING:
    from asrforge.combination import Combination
    from asrforge.engines.base import BaseEngine, DecodeOptions
    from asrforge.subtitles.files import FileSubtitler
    from asrforge.translation.plan import TextTranslation

FORMAT_EXTENSIONS = {
    "text": "txt", "json": "json", "verbose_json": "json", "srt": "srt", "vtt": "vtt", "diarized_json": "json"
}  # fmt: skip
# Commands that live in their own sub-packages (the server in serving/, the studies in experiments/) register under
# this entry-point group (pyproject.toml), so this module imports neither: a runtime install that leaves them out
# still transcribes. Short names are kept for the studies people run most: `asrforge bench` is `asrforge run bench`.
COMMAND_GROUP = "asrforge.commands"
STUDY_ALIASES = {"bench": "bench", "gate": "gate", "loadtest": "load"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "data":
        from asrforge.data import main as data

        return data(argv[1:])
    if argv and argv[0] in STUDY_ALIASES:
        argv = ["run", STUDY_ALIASES[argv[0]], *argv[1:]]
    if argv and argv[0] == "serve":
        # Before torch starts its thread pool: in a server, OpenMP workers that spin while waiting steal the core
        # the event loop, the VAD and the audio decoding need (measured: a decode 4x slower under that contention).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if argv and argv[0] in ("serve", "run", "report"):
        return _registered(argv[0])(argv[1:])
    args = _parser().parse_args(argv)
    quiet_third_party()
    return args.run(args)


def _registered(command: str) -> Callable[[list[str]], int]:
    """The ``main(argv)`` a sub-package registered for ``command``."""
    found = [point for point in entry_points(group=COMMAND_GROUP) if point.name == command]
    if not found:
        raise SystemExit(
            f"asrforge: the {command!r} command is not installed (no {COMMAND_GROUP} entry point); "
            "reinstall the package: pip install -e ."
        )
    return found[0].load()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asrforge", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    transcribe = commands.add_parser("transcribe", help="transcribe audio files")
    transcribe.add_argument("files", nargs="+", type=Path, metavar="FILE")
    transcribe.add_argument(
        "--engine", help="a conf/engine option (default: the benchmark winner, else whisper-tiny-en)"
    )
    transcribe.add_argument("--model", help="model preset, local path or hub id for the engine")
    transcribe.add_argument("--device", help="cpu, cuda, cuda:N (default: auto)")
    transcribe.add_argument("--plugins", help="comma-separated optimizations, e.g. int8_dynamic,warmup")
    transcribe.add_argument("--format", default="text", choices=list(FORMAT_EXTENSIONS), dest="response_format")
    transcribe.add_argument("--language", help="ISO 639-1 code; default: detect")
    transcribe.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    transcribe.add_argument(
        "--target-language", default="en", help="--task translate into: en (default) or zh (needs a text translator)"
    )
    transcribe.add_argument(
        "--translator", default="chat-completions", help="text translator: a conf/translation option"
    )
    transcribe.add_argument("--translator-url", help="its OpenAI-compatible base URL, e.g. http://127.0.0.1:8001/v1")
    transcribe.add_argument("--translator-model", help="the model that endpoint serves")
    transcribe.add_argument("--batch-size", type=int, default=1)
    policy = transcribe.add_argument_group(
        "decoding policy", "default: --decode fallback (faster-whisper's default, as the server); flags override it"
    )
    policy.add_argument("--decode", help="a conf/decode policy: fallback (default), beam5, greedy")
    policy.add_argument("--beam-size", type=int, help="beams at temperature 0; 1 = greedy")
    policy.add_argument("--patience", type=float, help="beam search patience (faster_whisper engine only)")
    policy.add_argument("--length-penalty", type=float, help="beam ranking: sum of log-probs / length ** this")
    policy.add_argument(
        "--temperature",
        type=_temperatures,
        help="one temperature, or a fallback ladder tried in order, e.g. 0,0.2,0.4,0.6,0.8,1",
    )
    policy.add_argument("--compression-ratio-threshold", type=float, help="re-decode a window above this gzip ratio")
    policy.add_argument("--log-prob-threshold", type=float, help="re-decode a window below this mean token log-prob")
    policy.add_argument("--no-speech-threshold", type=float, help="skip a low-log-prob window above this")
    policy.add_argument(
        "--condition-on-previous-text",
        action=argparse.BooleanOptionalAction,
        help="long-form: prompt each window with the text decoded so far",
    )
    policy.add_argument("--initial-prompt", "--prompt", dest="prompt", help="text before the first window")
    transcribe.add_argument(
        "--subtitle-mode",
        choices=["fast", "accurate"],
        help="word timing of srt/vtt cues: accurate (forced aligner) or fast (heuristic); default: conf/subtitles",
    )
    transcribe.add_argument(
        "--diarize",
        action="store_true",
        help="who spoke when: speaker per segment (text: 'A: ...' lines; srt/vtt: speaker cues; diarized_json)",
    )
    transcribe.add_argument("--min-speakers", type=int, help="with --diarize: at least this many speakers")
    transcribe.add_argument("--max-speakers", type=int, help="with --diarize: at most this many speakers")
    transcribe.add_argument("--output-dir", type=Path, help="write <file stem>.<ext> here instead of stdout")
    transcribe.set_defaults(run=_transcribe)

    commands.add_parser("report", help="re-render every study's reports and plots from their records (--help)")

    commands.add_parser("serve", help="serve the OpenAI audio API (asrforge serve --help)")
    commands.add_parser("data", help="download LibriSpeech dev-clean/test-clean as evaluation sets (--help)")
    commands.add_parser(
        "run",
        help="run a study: bench (Hydra overrides), load, partials, gateway, streaming, subtitles, translation, "
        "shrink, diarization, gate (asrforge run <study> --help)",
    )
    commands.add_parser("bench", help="= asrforge run bench: the benchmark matrix (key=value ... [--multirun])")
    commands.add_parser("loadtest", help="= asrforge run load: HTTP, SSE and WebSocket clients against the server")
    commands.add_parser("gate", help="= asrforge run gate: the regression gate, this tree against a base commit")
    return parser


def _temperatures(text: str) -> float | tuple[float, ...]:
    values = tuple(float(value) for value in text.split(",") if value.strip())
    if not values:
        raise argparse.ArgumentTypeError("give one temperature or a comma-separated list")
    return values[0] if len(values) == 1 else values


def _transcribe(args: argparse.Namespace) -> int:
    from asrforge.decoding import with_policy
    from asrforge.engines.base import POLICY_FIELDS, DecodeOptions
    from asrforge.formats import render
    from asrforge.pipeline import transcribe_paths

    try:
        combination, source = _combination(args)
        engine = combination.load()
    except RefusedCombinationError as refusal:
        print(f"asrforge: refused: {refusal.reason}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"asrforge: {error}", file=sys.stderr)
        return 2
    plugins = ", ".join(engine.applied_plugins) or "no plugins"
    print(f"asrforge: {engine.name} {engine.weights} on {engine.device} with {plugins} ({source})", file=sys.stderr)
    try:
        options, note = with_policy(
            engine,
            args.decode,
            # The task is set by the translation plan below (an English-only model or a text translator transcribes).
            DecodeOptions(language=args.language, prompt=args.prompt),
            {name: getattr(args, name) for name in POLICY_FIELDS},
        )
    except (ConfigError, UnsupportedOptionError) as error:
        print(f"asrforge: {error}", file=sys.stderr)
        return 2
    if note:
        print(f"asrforge: {note}", file=sys.stderr)
    translate = None
    if args.task == "translate":
        try:
            options, translate = _translation(engine, options, args)
        except (ConfigError, UnsupportedOptionError) as error:
            print(f"asrforge: {error}", file=sys.stderr)
            return 2
    if args.diarize:
        return _transcribe_diarized(engine, options, args)
    if args.response_format == "diarized_json":
        print("asrforge: --format diarized_json needs --diarize", file=sys.stderr)
        return 2
    subtitler = _subtitler(engine, options, args) if translate is None else None
    if subtitler is not None:
        options = subtitler.options
    failures = 0
    for path, result in transcribe_paths(engine, args.files, options, batch_size=args.batch_size):
        if translate is not None and not isinstance(result, AsrforgeError):
            try:
                result = translate(result)
            except AsrforgeError as error:
                result = error
        if isinstance(result, AsrforgeError):
            print(f"asrforge: {path}: {result}", file=sys.stderr)
            failures += 1
            continue
        if args.response_format == "json":
            body = json.dumps(
                {
                    "file": str(path),
                    "text": result.text,
                    "language": result.language,
                    "duration_s": round(result.duration_s, 3),
                },
                ensure_ascii=False,
            )
        elif subtitler is not None:
            body, alignment = subtitler.render(path, result, args.response_format, args.task)
            body = body.rstrip("\n")
            print(f"asrforge: {path}: {alignment.describe()}", file=sys.stderr)
        else:
            body = render(result, args.response_format, task=args.task).rstrip("\n")
        if args.output_dir:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            (args.output_dir / f"{path.stem}.{FORMAT_EXTENSIONS[args.response_format]}").write_text(body + "\n")
        else:
            print(body, flush=True)
    return 1 if failures else 0


def _transcribe_diarized(engine: BaseEngine, options: DecodeOptions, args: argparse.Namespace) -> int:
    """--diarize: each file's speaker-attributed transcript (asrforge/diarization), one file at a time."""
    from asrforge.audio import load_audio
    from asrforge.diarization import DiarizationOptions
    from asrforge.diarization.files import FileDiarizer
    from asrforge.diarization.render import render_diarized
    from asrforge.subtitles.options import load_subtitle_options

    if args.task != "transcribe" or args.response_format == "verbose_json":
        print(
            "asrforge: --diarize works with --task transcribe and text, json, srt, vtt or diarized_json",
            file=sys.stderr,
        )
        return 2
    try:
        bounds = DiarizationOptions(
            min_speakers=args.min_speakers, max_speakers=args.max_speakers, word_timing=args.subtitle_mode or "fast"
        )
    except ValueError as error:
        print(f"asrforge: {error}", file=sys.stderr)
        return 2
    subtitles = load_subtitle_options(mode=args.subtitle_mode)
    diarizer = FileDiarizer(engine, options, subtitles, bounds)
    failures = 0
    for path in args.files:
        try:
            transcript = diarizer.transcribe(load_audio(path))
        except (AsrforgeError, FileNotFoundError) as error:
            print(f"asrforge: {path}: {error}", file=sys.stderr)
            failures += 1
            continue
        if args.response_format == "text":
            body = "\n".join(f"{s.speaker}: {s.text.strip()}" for s in transcript.segments)
        else:
            fmt = "diarized_json" if args.response_format == "json" else args.response_format
            body = render_diarized(transcript, fmt, subtitles.layout).rstrip("\n")
        _emit(args, path, body)
    return 1 if failures else 0


def _emit(args: argparse.Namespace, path: Path, body: str) -> None:
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / f"{path.stem}.{FORMAT_EXTENSIONS[args.response_format]}").write_text(body + "\n")
    else:
        print(body, flush=True)


def _subtitler(engine: BaseEngine, options: DecodeOptions, args: argparse.Namespace) -> FileSubtitler | None:
    """Timed, laid-out cues for srt/vtt (asrforge/subtitles); None for the other formats."""
    if args.response_format not in ("srt", "vtt"):
        return None
    from asrforge.subtitles.files import FileSubtitler
    from asrforge.subtitles.options import load_subtitle_options

    return FileSubtitler(engine, options, load_subtitle_options(mode=args.subtitle_mode))


def _translation(
    engine: BaseEngine, options: DecodeOptions, args: argparse.Namespace
) -> tuple[DecodeOptions, TextTranslation | None]:
    """--task translate: the model's own English pass, or transcription then text translation (asrforge/translation)."""
    from asrforge.config import load_option
    from asrforge.translation import make_translator_config
    from asrforge.translation.plan import translation_step

    node = dict(load_option("translation", args.translator))
    node.update({k: v for k, v in {"base_url": args.translator_url, "model": args.translator_model}.items() if v})
    needed = args.translator_url or args.target_language != "en" or not engine.capabilities.translate
    config = make_translator_config(node) if needed else None
    translator = config.build() if config is not None else None
    return translation_step(engine, options, args.target_language, translator, config)


def _combination(args: argparse.Namespace) -> tuple[Combination, str]:
    from asrforge.winner import resolve_combination

    plugins = [name for name in args.plugins.split(",") if name] if args.plugins is not None else None
    return resolve_combination(args.engine, plugins, model=args.model, device=args.device)


if __name__ == "__main__":
    raise SystemExit(main())
