"""Qwen3-ASR and Qwen3-ForcedAligner checkpoints in the original release layout, converted once to transformers'.

Two layouts of the same weights exist. transformers' own (``Qwen3ASRForConditionalGeneration.save_pretrained``, the
``Qwen/Qwen3-ASR-*-hf`` repos) loads as it is. The original release (``Qwen/Qwen3-ASR-0.6B``, ``-1.7B``,
``Qwen/Qwen3-ForcedAligner-0.6B``), which the official ``qwen-asr`` package reads, nests everything under a
``thinker``: its config.json has ``model_type: qwen3_asr`` too, but the architecture sits in ``thinker_config``
(a plain ``Qwen3ASRConfig.from_pretrained`` would silently fall back to the default architecture), and its weights
are named ``thinker.audio_tower.*`` (the projector inside the encoder as ``proj1``/``proj2``), ``thinker.model.*``
and ``thinker.lm_head.*`` (the aligner's timestamp classifier). The text model's M-RoPE gets identical positions for
all three sections with audio-only input, so it is transformers' plain RoPE.

``hf_checkpoint(path)`` returns the path itself for the transformers layout, else the converted copy under
``cache_dir()/qwen3-asr/`` (written once, atomically, like the Whisper CTranslate2 converter's).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from asrforge.paths import cache_dir

CONVERTER_VERSION = 1  # bump when the converted files change, so stale caches are not reused

# Original name prefix -> transformers' (first match wins; the projector lives inside the original's encoder).
RENAMES = (
    ("thinker.audio_tower.proj1.", "model.multi_modal_projector.linear_1."),
    ("thinker.audio_tower.proj2.", "model.multi_modal_projector.linear_2."),
    ("thinker.audio_tower.", "model.audio_tower."),
    ("thinker.model.", "model.language_model."),
)
LM_HEAD = "thinker.lm_head."
ENCODER_FIELDS = [
    "num_mel_bins",
    "encoder_layers",
    "encoder_attention_heads",
    "encoder_ffn_dim",
    "d_model",
    "dropout",
    "attention_dropout",
    "activation_function",
    "activation_dropout",
    "scale_embedding",
    "initializer_range",
    "n_window",
    "output_dim",
    "n_window_infer",
    "downsample_hidden_size",
]
TEXT_FIELDS = [
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "max_position_embeddings",
    "initializer_range",
    "rms_norm_eps",
    "tie_word_embeddings",
    "attention_bias",
    "attention_dropout",
]
# The aligner's prompt upstream: the audio, then every word followed by two <timestamp> markers (start, end).
ALIGNER_CHAT_TEMPLATE = (
    "{%- for m in messages -%}{%- for c in m.content -%}"
    "{%- if c.type == 'audio' or 'audio' in c or 'audio_url' in c -%}"
    "{{- '<|audio_start|><|audio_pad|><|audio_end|>' -}}"
    "{%- elif c.type == 'text' -%}{{- c.text + '<timestamp><timestamp>' -}}"
    "{%- endif -%}{%- endfor -%}{%- endfor -%}"
)
HOW_TO_CONVERT = (
    'asrforge converts it on load; to convert by hand: python -c "from asrforge.engines.qwen3_asr_convert import '
    "convert; convert('{src}', 'OUT_DIR')\" and point the model at OUT_DIR"
)


def is_original_layout(path: str | os.PathLike) -> bool:
    """A directory whose config.json nests the model under ``thinker_config`` (the original release)."""
    config = Path(path) / "config.json"
    return config.is_file() and "thinker_config" in json.loads(config.read_text(encoding="utf-8"))


def is_aligner(original_config: dict[str, Any]) -> bool:
    thinker = original_config["thinker_config"]
    return "forced_aligner" in str(thinker.get("model_type", "")) or "classify_num" in thinker


def hf_checkpoint(model: str) -> str:
    """What ``from_pretrained`` loads for ``model``: the converted cache for the original layout, else ``model``."""
    path = Path(model).expanduser()
    if not path.is_dir() or not is_original_layout(path):
        return model
    from asrforge.engines.weights import checkpoint_id
    from asrforge.engines.whisper_ct2 import _safe_name, _write_atomically

    digest = checkpoint_id(path).rsplit(":", 1)[1]
    target = cache_dir() / "qwen3-asr" / f"{_safe_name(path.name)}-{digest}-v{CONVERTER_VERSION}"
    if not (target / "config.json").is_file():
        try:
            _write_atomically(target, lambda tmp: convert(path, tmp))
        except (KeyError, ValueError) as error:
            raise ValueError(f"cannot convert {path} from the original Qwen3-ASR layout: {error}") from error
    return str(target)


def hf_config(original: dict[str, Any], generation: dict[str, Any]) -> Any:
    """transformers' ``Qwen3ASRConfig`` for an original config.json (and its generation_config.json)."""
    from transformers import Qwen3ASRConfig

    thinker = original["thinker_config"]
    audio = {key: thinker["audio_config"][key] for key in ENCODER_FIELDS if key in thinker["audio_config"]}
    # transformers' sinusoidal table covers one encoder chunk: 2 * n_window mel frames after three stride-2 convs.
    frames = 2 * audio.get("n_window", 50)
    for _ in range(3):
        frames = (frames - 1) // 2 + 1
    audio["max_position_embeddings"] = frames
    text_original = thinker["text_config"]
    rope = dict(text_original.get("rope_scaling") or {})
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", "mrope"):
        raise ValueError(f"unsupported rope scaling {rope} (only plain or multimodal RoPE converts)")
    text = {key: text_original[key] for key in TEXT_FIELDS if key in text_original}
    text.update(model_type="qwen3", rope_parameters={"rope_type": "default", "rope_theta": text_original["rope_theta"]})
    fields: dict[str, Any] = {
        "audio_config": audio,
        "text_config": text,
        "audio_token_id": thinker["audio_token_id"],
        "tie_word_embeddings": text.get("tie_word_embeddings", False),
    }
    for name in ("timestamp_token_id", "pad_token_id", "eos_token_id"):
        value = original.get(name, thinker.get(name, generation.get(name)))
        if value is not None:
            fields[name] = value
    if is_aligner(original):
        fields["num_labels"] = thinker.get("classify_num", original.get("classify_num"))
    return Qwen3ASRConfig(**fields)


def rename(name: str, aligner: bool) -> str:
    if name.startswith(LM_HEAD):
        return ("score." if aligner else "lm_head.") + name[len(LM_HEAD) :]
    for old, new in RENAMES:
        if name.startswith(old):
            return new + name[len(old) :]
    raise KeyError(f"unexpected weight {name!r} (not under thinker.audio_tower/model/lm_head)")


def convert(src: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """Write the transformers-layout checkpoint (weights, config, processor) of an original-layout ``src``."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Qwen3ASRForConditionalGeneration, Qwen3ASRForTokenClassification

    src, out_dir = Path(src), Path(out_dir)
    original = json.loads((src / "config.json").read_text(encoding="utf-8"))
    generation_file = src / "generation_config.json"
    generation = json.loads(generation_file.read_text(encoding="utf-8")) if generation_file.is_file() else {}
    aligner = is_aligner(original)
    config = hf_config(original, generation)
    shards = sorted(src.glob("*.safetensors"))
    if not shards:
        raise ValueError(f"no *.safetensors weights in {src}")
    state = {rename(name, aligner): tensor for shard in shards for name, tensor in load_file(shard).items()}
    model_class = Qwen3ASRForTokenClassification if aligner else Qwen3ASRForConditionalGeneration
    with torch.device("meta"):
        reference = model_class(config)
    expected = {name: tuple(p.shape) for name, p in reference.state_dict().items()}
    if config.tie_word_embeddings and not aligner:
        expected.pop("lm_head.weight", None)
        state.pop("lm_head.weight", None)
    produced = {name: tuple(t.shape) for name, t in state.items()}
    if expected != produced:
        missing, extra = sorted(expected.keys() - produced.keys()), sorted(produced.keys() - expected.keys())
        wrong = sorted(n for n in expected.keys() & produced.keys() if expected[n] != produced[n])
        raise ValueError(f"conversion mismatch: missing {missing[:5]}, unexpected {extra[:5]}, wrong shape {wrong[:5]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.contiguous() for name, tensor in state.items()}
    save_file(weights, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config.architectures = [model_class.__name__]
    config.save_pretrained(out_dir)
    if generation_file.is_file() and not aligner:
        (out_dir / "generation_config.json").write_text(generation_file.read_text(encoding="utf-8"), encoding="utf-8")
    processor(src, aligner, original).save_pretrained(out_dir)


def processor(src: Path, aligner: bool, original: dict[str, Any]) -> Any:
    """transformers' processor around the checkpoint's own tokenizer. The chat template is upstream's prompt as the
    offline processor writes it (engines/qwen3_asr_processor.py), or the aligner's: the original template targets
    ``qwen-asr``'s own processor, not transformers' transcription request."""
    from transformers import AutoTokenizer, Qwen3ASRFeatureExtractor, Qwen3ASRProcessor

    from asrforge.engines.qwen3_asr_processor import AUDIO_BOS_TOKEN, AUDIO_EOS_TOKEN, AUDIO_TOKEN, CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(
        src, audio_token=AUDIO_TOKEN, audio_bos_token=AUDIO_BOS_TOKEN, audio_eos_token=AUDIO_EOS_TOKEN
    )
    preprocessor = src / "preprocessor_config.json"
    settings = json.loads(preprocessor.read_text(encoding="utf-8")) if preprocessor.is_file() else {}
    mel_bins = settings.get("feature_size", 128)
    extras = {}
    if aligner and original.get("timestamp_segment_time") is not None:
        extras["timestamp_segment_time"] = original["timestamp_segment_time"]
    return Qwen3ASRProcessor(
        feature_extractor=Qwen3ASRFeatureExtractor(feature_size=mel_bins),
        tokenizer=tokenizer,
        chat_template=ALIGNER_CHAT_TEMPLATE if aligner else CHAT_TEMPLATE,
        **extras,
    )
