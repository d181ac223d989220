"""The plugin contract: every plugin has a config file, and impossible combinations are refused before anything runs."""

from __future__ import annotations

import pytest

from asrforge.config import group_options
from asrforge.optimizations import REGISTRY, Target, combination_refusal, make_plugin, make_plugins

CPU_WHISPER = Target(engine="whisper", device="cpu", dtype="float32")
H100_BF16 = Target(engine="qwen3_asr", device="cuda", dtype="bfloat16", capability=(9, 0))
T4_FP16 = Target(engine="qwen3_asr", device="cuda", dtype="float16", capability=(7, 5))


def test_every_registered_plugin_has_exactly_one_config_file_that_builds_it():
    assert set(group_options("optimizations")) == set(REGISTRY)
    for name, cls in REGISTRY.items():
        assert isinstance(make_plugin(name), cls)


def test_config_overrides_reach_the_plugin():
    plugin = make_plugin(
        "int8_dynamic",
        {
            "int8_dynamic": {
                "_target_": "asrforge.optimizations.int8_dynamic.Int8Dynamic",
                "targets": ["decoder"],
                "backend": "fbgemm",
            }
        },
    )
    assert tuple(plugin.targets) == ("decoder",) and plugin.backend == "fbgemm"


def test_unknown_plugin_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: .*sdpa"):
        make_plugin("go_faster")


@pytest.mark.parametrize(
    ("target", "names", "reason"),
    [
        (CPU_WHISPER, ["tf32"], "tf32 needs a cuda device; this is cpu"),
        (CPU_WHISPER, ["cudnn_benchmark"], "needs a cuda device"),
        (CPU_WHISPER, ["flash_attention_2"], "needs a cuda device"),
        (H100_BF16, ["tf32"], "tf32 needs dtype float32; the engine runs bfloat16"),
        (T4_FP16, ["flash_attention_2"], "compute capability >= 8.0; this device has 7.5"),
        (CPU_WHISPER, ["sdpa", "sdpa"], "listed twice: sdpa"),
        (H100_BF16, ["sdpa", "flash_attention_2"], "cannot be combined with"),
        (Target("faster_whisper", "cpu", "int8"), ["int8_dynamic"], "needs engine qwen3_asr or whisper"),
        (H100_BF16, ["int8_dynamic"], None),  # torchao back-end on CUDA
    ],
)
def test_refusals_are_one_line_reasons(target, names, reason):
    refusal = combination_refusal(target, make_plugins(names))
    if reason is None:
        assert refusal is None
    else:
        assert refusal is not None and reason in refusal and "\n" not in refusal


def test_flash_attention_needs_its_package_even_where_the_gpu_fits():
    refusal = combination_refusal(H100_BF16, make_plugins(["flash_attention_2"]))
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        assert refusal == "flash_attention_2 needs the package(s) flash_attn, which are not installed"
    else:
        assert refusal is None


def test_cpu_int8_backend_refuses_non_float32():
    plugin = make_plugin(
        "int8_dynamic",
        {"int8_dynamic": {"_target_": "asrforge.optimizations.int8_dynamic.Int8Dynamic", "backend": "fbgemm"}},
    )
    assert "float32 models on CPU only" in combination_refusal(H100_BF16, [plugin])


def test_cuda_graph_compile_mode_is_refused_on_cpu():
    plugin = make_plugin(
        "torch_compile",
        {"torch_compile": {"_target_": "asrforge.optimizations.torch_compile.TorchCompile", "mode": "reduce-overhead"}},
    )
    assert "needs a cuda device" in combination_refusal(CPU_WHISPER, [plugin])


def test_warmup_without_speech_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("ASRFORGE_EVAL_DATA", str(tmp_path))
    assert "warmup needs representative speech" in combination_refusal(CPU_WHISPER, make_plugins(["warmup"]))


def test_the_torch_engines_by_name_are_the_torch_engine_classes():
    """Requirements name the engines a plugin needs before any engine module loads; the names must be the classes."""
    from asrforge.engines import ENGINES, TORCH_ENGINES, engine_class
    from asrforge.engines.base import TorchEngine

    assert {name for name in ENGINES if issubclass(engine_class(name), TorchEngine)} == TORCH_ENGINES
