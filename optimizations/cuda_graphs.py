"""The decoder step captured as CUDA graphs: a static KV cache plus ``torch.compile(mode="reduce-overhead")``
(Inductor's CUDA-graph trees), with batch sizes and cache lengths bucketed so captures stay few.

A decoder step of a small model is mostly kernel-launch overhead (hundreds of small kernels per token); replaying
one captured graph removes it. transformers compiles the per-token forward from a ``CompileConfig`` when the cache
is static, and runs the prefill eagerly, so the prompt length (audio tokens) does not cause recompiles; only the
batch size and the cache length do, and both are bucketed (``shape_buckets``). Each new bucket pays one compile and
capture on its first call: the harness reports that cold call (``first_call_ms``) apart from the steady p50.
Qwen3-ASR only: Whisper's generate builds its decoder prompt and cross-attention cache itself, so the cache cannot
be handed in per bucket (``torch_compile`` with ``mode: reduce-overhead`` covers Whisper).
"""

from __future__ import annotations

from dataclasses import dataclass

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, register
from asrforge.optimizations.shape_buckets import install_buckets


@register
@dataclass(frozen=True)
class CudaGraphs(Plugin):
    name = "cuda_graphs"
    order = 60  # compilation stage: after quantization, so the captured graph is the final decoder
    # torch_compile would compile the same forward a second way; speculative decoding varies the step's length.
    requires = Requirements(
        devices=frozenset({"cuda"}),
        engines=frozenset({"qwen3_asr"}),
        conflicts=frozenset({"torch_compile", "speculative"}),
    )

    batch_buckets: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    # prompt (audio tokens included) + new tokens; a 10-s clip needs ~200-300, a 30-s one ~550-800.
    length_buckets: tuple[int, ...] = (256, 512, 768, 1024, 1536, 2048, 4096)
    fullgraph: bool = False

    def apply(self, engine: TorchEngine) -> TorchEngine:
        from transformers import CompileConfig

        engine.generate_kwargs["compile_config"] = CompileConfig(
            mode="reduce-overhead", fullgraph=self.fullgraph, dynamic=False
        )
        install_buckets(engine, self.batch_buckets, self.length_buckets, self.name)
        return engine
