"""Tiny Qwen3-ASR checkpoints on disk, and what transformers alone says they transcribe.

The tiny preset's architecture with two different seeds, saved with ``save_pretrained`` (model and processor) as a
user's fine-tuned checkpoint would be: every entry point given such a directory must load exactly those weights, so
its transcript equals ``direct_transcript`` (processor + greedy ``generate``, no asrforge code) and the two seeds'
transcripts differ. ``to_original`` writes the original release layout (the inverse of the converter's renaming).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import torch
from transformers import AutoProcessor, Qwen3ASRForConditionalGeneration

from asrforge.engines.qwen3_asr import Qwen3ASREngine, Qwen3ASREngineConfig
from asrforge.engines.qwen3_asr_convert import LM_HEAD, RENAMES

TINY = "qwen3-asr-tiny"


def save_tiny_checkpoint(directory: Path, seed: int) -> Path:
    """The tiny preset's random weights of ``seed`` (and its offline processor) saved as a transformers checkpoint."""
    engine = Qwen3ASREngine(Qwen3ASREngineConfig(model=TINY, seed=seed, device="cpu", dtype="float32"))
    engine.model.save_pretrained(directory)
    engine.processor.save_pretrained(directory)
    return directory


def direct_transcript(directory: Path, audio: np.ndarray) -> str:
    """Greedy transcript of ``audio`` by transformers alone, decoding as many tokens as the engine's default bound
    (random weights never stop on their own)."""
    processor = AutoProcessor.from_pretrained(directory)
    model = Qwen3ASRForConditionalGeneration.from_pretrained(directory, dtype=torch.float32).eval()
    inputs = processor.apply_transcription_request(audio=audio)
    bound = math.ceil(len(audio) / 16_000 * 12.0) + 16  # Qwen3ASREngineConfig's max_tokens_per_s/_extra
    with torch.no_grad():
        sequences = model.generate(**inputs, max_new_tokens=bound, do_sample=False)
    return processor.decode(sequences[0, inputs["input_ids"].shape[1] :], return_format="parsed")["transcription"]


def to_original(hf_dir: Path, out_dir: Path) -> Path:
    """An original-release-layout copy of a transformers checkpoint: the config nested under ``thinker_config``, the
    weights under ``thinker.*`` (projector inside the encoder), the tokenizer files as they are."""
    from safetensors.torch import load_file, save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    hf = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    aligner = "Qwen3ASRForTokenClassification" in hf.get("architectures", [])
    text = dict(hf["text_config"])
    text["rope_theta"] = text.pop("rope_parameters")["rope_theta"]
    text["rope_scaling"] = {"rope_type": "default", "mrope_section": [24, 20, 20], "interleaved": True}
    thinker = {
        "model_type": "qwen3_forced_aligner" if aligner else "qwen3_asr_thinker",
        "audio_config": {**hf["audio_config"], "max_source_positions": 1500, "conv_chunksize": 500},
        "text_config": text,
        "audio_token_id": hf["audio_token_id"],
    }
    if aligner:
        thinker["classify_num"] = len(hf["id2label"])
    original = {"model_type": "qwen3_asr", "thinker_config": thinker}
    original |= {key: hf[key] for key in ("timestamp_token_id", "pad_token_id", "eos_token_id")}
    (out_dir / "config.json").write_text(json.dumps(original, indent=2), encoding="utf-8")
    inverse = [(new, old) for old, new in RENAMES] + [("score." if aligner else "lm_head.", LM_HEAD)]
    state = {}
    for name, tensor in load_file(hf_dir / "model.safetensors").items():
        state[next(old + name[len(new) :] for new, old in inverse if name.startswith(new))] = tensor
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    for file in hf_dir.iterdir():
        if re.fullmatch(r"tokenizer.*|vocab\.json|merges\.txt|special_tokens_map\.json", file.name):
            (out_dir / file.name).write_bytes(file.read_bytes())
    return out_dir


def save_tiny_aligner(directory: Path, seed: int, num_labels: int = 64) -> Path:
    """A Qwen3-ForcedAligner of the tiny preset's architecture (random, ``seed``) with its processor, saved as
    transformers saves one: a token classifier over time bins, prompted with upstream's aligner template."""
    from transformers import Qwen3ASRFeatureExtractor, Qwen3ASRForTokenClassification, Qwen3ASRProcessor

    from asrforge.engines.qwen3_asr import build_model_config
    from asrforge.engines.qwen3_asr_convert import ALIGNER_CHAT_TEMPLATE
    from asrforge.engines.qwen3_asr_processor import build_tokenizer

    config = build_model_config(Qwen3ASREngineConfig(model=TINY).preset_architecture())
    config.num_labels = num_labels
    config.architectures = [Qwen3ASRForTokenClassification.__name__]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ASRForTokenClassification(config)
    model.save_pretrained(directory)
    tokenizer = build_tokenizer(Qwen3ASREngineConfig(model=TINY).preset_architecture()["tokenizer_layout"])
    Qwen3ASRProcessor(Qwen3ASRFeatureExtractor(), tokenizer, chat_template=ALIGNER_CHAT_TEMPLATE).save_pretrained(
        directory
    )
    return directory
