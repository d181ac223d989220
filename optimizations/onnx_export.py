"""The audio encoder as an ONNX model run by onnxruntime: export (cached on disk), session, and a drop-in module.

Shared by the ``onnx_encoder`` (CPU / CUDA execution providers) and ``tensorrt_encoder`` (TensorRT EP) plugins.
The export uses ``torch.onnx.export(dynamo=True)`` with a dynamic batch axis and a dynamic time axis; Whisper's
encoder itself insists on exactly 3000 mel frames (its positional table has 1500 rows), so for Whisper the time axis
is declared dynamic but only ever sees one length. The export is float32 (onnxruntime's CPU EP has no bfloat16
kernels for most ops); inputs are cast in and outputs back to the engine's dtype.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asrforge.paths import cache_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportKey:
    """What an exported file depends on: the model, its weights, the input shape it was traced with, torch."""

    model: str
    weights: str  # fingerprint of the encoder's parameters
    mel_bins: int
    frames: int
    opset: int

    def digest(self) -> str:
        text = json.dumps({**self.__dict__, "torch": torch.__version__}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A cheap fingerprint of a module's parameters (names, shapes and float64 sums), to key the export cache."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.double().sum().item():.10e}".encode())
    return digest.hexdigest()[:16]


class _EncoderForExport(torch.nn.Module):
    """The encoder with a plain tensor in and out (what an ONNX graph can express)."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_features, return_dict=True).last_hidden_state


def export_encoder(encoder: torch.nn.Module, key: ExportKey, folder: Path | None = None) -> Path:
    """The ONNX file of ``encoder`` for ``key``, exported once and then read from the cache."""
    folder = folder or cache_dir() / "onnx"
    path = folder / f"{key.model.replace('/', '_')}-encoder-{key.digest()}.onnx"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    module = _EncoderForExport(copy.deepcopy(encoder).float().cpu().eval())
    example = torch.zeros(2, key.mel_bins, key.frames)
    batch, time = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("time", min=1)
    log.info("exporting the %s encoder to ONNX (once; cached at %s)", key.model, path)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            input_names=["input_features"],
            output_names=["last_hidden_state"],
            dynamic_shapes={"input_features": {0: batch, 2: time}},
            opset_version=key.opset,
            dynamo=True,
            external_data=False,
        )
    program.save(str(tmp))
    tmp.replace(path)
    return path


def providers_for(device: str, tensorrt: bool = False, trt_cache: Path | None = None) -> list[Any]:
    """onnxruntime execution providers for ``device``, best first (each falls back to the next for missing ops)."""
    if torch.device(device).type != "cuda":
        return ["CPUExecutionProvider"]
    index = torch.device(device).index or 0
    chain: list[Any] = []
    if tensorrt:
        options = {"device_id": index, "trt_fp16_enable": True}
        if trt_cache is not None:  # built TensorRT engines are cached too: building one takes minutes
            options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(trt_cache))
        chain.append(("TensorrtExecutionProvider", options))
    chain.append(("CUDAExecutionProvider", {"device_id": index}))
    return chain


class OnnxEncoder(torch.nn.Module):
    """Stands in for the transformers encoder: same call, same ``BaseModelOutput``, computed by onnxruntime.

    It keeps the original's front-end convolutions as attributes because Whisper's ``generate`` reads their strides.
    On CUDA, inputs and outputs stay on the GPU (IO binding to torch's buffers): no host round trip.
    """

    def __init__(self, original: torch.nn.Module, path: Path, providers: list[Any], device: str, dtype: torch.dtype):
        import onnxruntime

        super().__init__()
        self.conv1, self.conv2 = getattr(original, "conv1", None), getattr(original, "conv2", None)
        self.config = original.config
        self.main_input_name = getattr(original, "main_input_name", "input_features")
        self.output_dtype = dtype
        self.device_name = device
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # torch's intra-op pool is sized by the threads plugin; onnxruntime sizes its own to the CPU count otherwise.
        options.intra_op_num_threads = torch.get_num_threads()
        # Idle onnxruntime workers otherwise spin for a while after each run, taking the cores torch's decoder needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        self.providers = self.session.get_providers()

    def forward(self, input_features: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        features = input_features.float().contiguous()
        if features.device.type == "cuda":
            hidden = self._run_on_gpu(features)
        else:
            (out,) = self.session.run(None, {"input_features": features.numpy()})
            hidden = torch.from_numpy(out)
        return BaseModelOutput(last_hidden_state=hidden.to(self.output_dtype))

    def _run_on_gpu(self, features: torch.Tensor) -> torch.Tensor:
        # Whisper's conv front-end halves the frames; the width is the model's.
        out = torch.empty(features.shape[0], features.shape[-1] // 2, self.config.d_model, device=features.device)
        binding = self.session.io_binding()
        index = features.device.index or 0
        binding.bind_input("input_features", "cuda", index, np.float32, tuple(features.shape), features.data_ptr())
        binding.bind_output("last_hidden_state", "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(features.device).synchronize()  # onnxruntime runs on its own stream
        self.session.run_with_iobinding(binding)
        return out


def max_abs_difference(original: torch.nn.Module, replacement: torch.nn.Module, features: torch.Tensor) -> float:
    """Largest absolute difference between two encoders' outputs for ``features`` (the export's correctness check)."""
    with torch.no_grad():
        expected = original(features, return_dict=True).last_hidden_state.float()
        got = replacement(features).last_hidden_state.float()
    return float((expected - got).abs().max())
