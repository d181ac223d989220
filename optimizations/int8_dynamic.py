"""Int8 weights with dynamically quantized int8 activations for the linear layers (W8A8 dynamic).

Two back-ends, chosen per device by measurement (see reports/): on CUDA, torchao's
``Int8DynamicActivationInt8WeightConfig`` (int8 tensor-core matmuls; best under torch.compile); on CPU, PyTorch's
fbgemm/x86 dynamic-quantized ``Linear`` kernels, because torchao's eager CPU int8 path is several times *slower* than
fp32 for the small matmuls of a decoder step (seen: 1.08 ms vs 0.16 ms for a 384x1536 MLP), while fbgemm's is not;
and under torch.compile it is slower still on a CPU without VNNI (tiny.en: 7.0 s per file vs 0.52 s with fbgemm).
Weights get one scale per output channel by default: per-tensor scales cost 2 words more on the dev set (WER 4.22 %
vs 3.37 %) for 3 % less latency.

fbgemm's dynamic ``Linear`` quantizes its whole input with one activation scale, so in a batch one clip's loudest
activation would set its neighbours' scale and could change their words. With ``per_sample`` (the default) each
batch element is quantized with its own scale, exactly as it is alone: a batched decode then equals the lone one
token for token, and the server may batch on CPU in exact mode. Per-token scales (torchao's) would do too, but its
eager CPU int8 is the slow path above, and ``torch._int_mm`` with per-row scales measured several times slower than
fbgemm here for the encoder's 1500-row matmuls; a per-sample loop keeps fbgemm's kernels and calls them once per
element, which for a decoder step (one row per element) is what a lone decode costs anyway. Under beam search a
sample is one clip with its beams (``generate`` lays out a clip's beams as consecutive rows): they share a scale and
go through one call, so a beam-5 step costs one call per Linear, not five (the lm_head's 20-MB int8 matrix read once).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch

from asrforge.engines import TORCH_ENGINES
from asrforge.engines.base import TorchEngine
from asrforge.optimizations import int8_weights_cache
from asrforge.optimizations.base import Plugin, Requirements, Target, register

TARGETS = ("encoder", "decoder", "lm_head")


@register
@dataclass(frozen=True)
class Int8Dynamic(Plugin):
    name = "int8_dynamic"
    order = 20
    requires = Requirements(engines=TORCH_ENGINES, dtypes=frozenset({"float32", "bfloat16", "float16"}))

    targets: tuple[str, ...] = TARGETS
    backend: str = "auto"  # "auto" | "torchao" | "fbgemm"
    per_channel: bool = True  # one weight scale per output row (as CTranslate2 does), not one per matrix
    per_sample: bool = True  # fbgemm: one activation scale per batch element, so batching changes no transcript
    cache: bool = True  # fbgemm: quantized weights kept on disk (int8_weights_cache), a start only prepacks them

    def resolved_backend(self, device_type: str) -> str:
        if self.backend != "auto":
            return self.backend
        return "fbgemm" if device_type == "cpu" else "torchao"

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason:
            return reason
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown:
            return f"int8_dynamic: unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})"
        backend = self.resolved_backend(target.device_type)
        if backend == "fbgemm":
            if target.device_type != "cpu" or target.dtype != "float32":
                return "int8_dynamic backend fbgemm runs float32 models on CPU only"
            if not hasattr(torch.ao.quantization, "quantize_dynamic"):
                return "int8_dynamic backend fbgemm needs torch.ao.quantization.quantize_dynamic (gone in this torch)"
        elif backend == "torchao":
            return Requirements(packages=("torchao",)).refusal(self.name, target)
        else:
            return f"int8_dynamic: unknown backend {backend!r} (auto, torchao, fbgemm)"
        return None

    def apply(self, engine: TorchEngine) -> TorchEngine:
        backend = self.resolved_backend(torch.device(engine.device).type)
        quantize = (
            functools.partial(
                _quantize_fbgemm, per_channel=self.per_channel, per_sample=self.per_sample, cache=self.cache
            )
            if backend == "fbgemm"
            else _quantize_torchao
        )
        if backend == "fbgemm" and not self.per_sample:
            engine.batch_variance = "int8_dynamic (fbgemm) quantizes activations with one scale per batch"
        if backend == "fbgemm" and self.per_sample and engine.beams_as_rows:
            # Under generate a clip's beams are consecutive rows, grouped by the call's record of them.
            quantize = functools.partial(quantize, rows_per_sample=_record_beams(engine.model))
        if "encoder" in self.targets:
            quantize(engine.encoder_module())
        if "decoder" in self.targets:
            quantize(engine.decoder_module())
        if "lm_head" in self.targets:
            head = engine.model.get_output_embeddings()
            # The head usually shares its weight with the input embedding; quantizing it in place would turn the
            # embedding table into int8 too, so the head gets its own copy first.
            head.weight = torch.nn.Parameter(head.weight.detach().clone(), requires_grad=False)
            engine.model.set_output_embeddings(quantize(head))
        return engine


def _quantize_fbgemm(
    module: torch.nn.Module,
    per_channel: bool,
    per_sample: bool = False,
    rows_per_sample: list[int] | None = None,
    cache: bool = False,
) -> torch.nn.Module:
    with warnings.catch_warnings():
        # torch marks torch.ao.quantization deprecated in favour of torchao, whose CPU path is the slow one here.
        warnings.simplefilter("ignore")
        quantization = torch.ao.quantization
        qconfig = quantization.per_channel_dynamic_qconfig if per_channel else quantization.default_dynamic_qconfig
        scheme = f"fbgemm {'per-channel' if per_channel else 'per-tensor'} qint8"
        module = _swap_linears(module, qconfig, scheme, cache)
    if per_sample:
        for layer in [module, *module.modules()]:
            if isinstance(layer, torch.ao.nn.quantized.dynamic.Linear):
                layer.forward = functools.partial(_per_sample, layer.forward, rows_per_sample or [1, 1])
    return module


def _swap_linears(module: torch.nn.Module, qconfig, scheme: str, cache: bool) -> torch.nn.Module:
    """``quantize_dynamic(module, {Linear: qconfig})``: every ``nn.Linear`` (exactly that type, as its mapping
    matches) becomes fbgemm's dynamic int8 ``Linear``, the same weights and kernels; with ``cache``, the quantized
    weights come from (or go to) int8_weights_cache instead of being quantized at every start."""
    root = torch.nn.Sequential(module) if type(module) is torch.nn.Linear else module
    linears = {name: layer for name, layer in root.named_modules() if type(layer) is torch.nn.Linear}
    path = int8_weights_cache.entry_path(linears, scheme) if cache else None
    weights = int8_weights_cache.load(path) if path is not None else None
    if weights is None or weights.keys() != linears.keys():
        weights = {name: _quantized_weight(layer, qconfig) for name, layer in linears.items()}
        if path is not None:
            int8_weights_cache.save(path, weights)
    for name, layer in linears.items():
        root.set_submodule(name, _dynamic_linear(layer, weights[name]))
    return root[0] if root is not module else module


def _quantized_weight(linear: torch.nn.Linear, qconfig) -> torch.Tensor:
    """``Linear.from_float``'s weight: the qconfig's observer, then its scales and zero points."""
    from torch.ao.nn.quantized.modules.utils import _quantize_weight

    observer = qconfig.weight()
    observer(linear.weight)
    return _quantize_weight(linear.weight.float(), observer)


def _dynamic_linear(linear: torch.nn.Linear, qweight: torch.Tensor) -> torch.nn.Module:
    """``Linear.from_float``'s module with one weight prepack instead of three. Its constructor prepacks an empty
    weight of the full shape before the real one is set (and its packed-params holder a 1x1 one): for tiny.en's 20-MB
    head that wasted prepack alone cost 0.1 s of every start. A placeholder of shape 1x1 makes them free."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    layer = DynamicLinear(1, 1, dtype=qweight.dtype)
    layer.in_features, layer.out_features = linear.in_features, linear.out_features
    layer.set_weight_bias(qweight, linear.bias)
    return layer


def _per_sample(forward, beams: list[int], x: torch.Tensor) -> torch.Tensor:
    """``forward`` on each sample alone (its own activation scale); inputs of rank 2 are one sample.

    ``beams`` is [clips, rows per clip] of the ``generate`` call in progress: a tensor of exactly clips x rows rows
    is a decoder step's (or prefill's) beams, one sample per clip; any other tensor has one sample per row.
    """
    if x.dim() < 3 or x.shape[0] == 1:
        return forward(x)
    clips, rows = beams
    step = rows if rows > 1 and x.shape[0] == clips * rows else 1
    if step == x.shape[0]:
        return forward(x)
    return torch.cat([forward(x[i : i + step]) for i in range(0, x.shape[0], step)])


def _record_beams(model: torch.nn.Module) -> list[int]:
    """[clips, rows per clip] of the ``generate`` call in progress, read where ``generate`` repeats its inputs.

    The record lives for one ``generate`` call: it is [1, 1] (one sample per row) from the call's start, when the
    encoder runs on the clips before any are repeated into beams, and after its end (a stream step calls the decoder
    outside ``generate``). Left over from the previous call, a beam-5 decode's [1, 5] made the encoder of the next
    batch of five clips quantise them with one shared scale, so batching could change a transcript (the likely cause
    of a realtime final that read "Claflin" for its lone "Klafflin" under load)."""
    beams = [1, 1]
    expand, generate = model._expand_inputs_for_generation, model.generate

    def recording(expand_size: int = 1, input_ids: torch.Tensor | None = None, **kwargs):
        beams[:] = [input_ids.shape[0] if input_ids is not None else 1, max(1, expand_size)]
        return expand(expand_size=expand_size, input_ids=input_ids, **kwargs)

    @functools.wraps(generate)
    def generating(*args, **kwargs):
        beams[:] = [1, 1]
        try:
            return generate(*args, **kwargs)
        finally:
            beams[:] = [1, 1]

    model._expand_inputs_for_generation = recording
    model.generate = generating
    return beams


def _quantize_torchao(module: torch.nn.Module) -> torch.nn.Module:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    # quantize_ swaps the weights of Linear layers *inside* the module it is given: a bare one needs a wrapper.
    quantize_(
        torch.nn.Sequential(module) if isinstance(module, torch.nn.Linear) else module,
        Int8DynamicActivationInt8WeightConfig(),
    )
    return module
