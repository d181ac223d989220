"""int8_dynamic's fbgemm conversion: torch's own ``quantize_dynamic`` result, and a start that reads the quantized
weights from the cache instead of quantizing them again."""

from __future__ import annotations

import warnings

import pytest
import torch

from asrforge.optimizations import int8_dynamic, int8_weights_cache


def small_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Sequential(torch.nn.Linear(256, 64, bias=False))
    ).eval()


def torch_quantized(model: torch.nn.Module, per_channel: bool) -> torch.nn.Module:
    quantization = torch.ao.quantization
    qconfig = quantization.per_channel_dynamic_qconfig if per_channel else quantization.default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantization.quantize_dynamic(model, {torch.nn.Linear: qconfig})


@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_conversion_is_quantize_dynamics(per_channel: bool, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path))
    x = torch.randn(3, 7, 64)
    expected = torch_quantized(small_model(), per_channel)(x)
    for _ in range(2):  # the first quantizes and writes the entry, the second reads it back
        ours = int8_dynamic._quantize_fbgemm(small_model(), per_channel=per_channel, cache=True)
        assert sum(type(m).__name__ == "Linear" and "dynamic" in type(m).__module__ for m in ours.modules()) == 2
        assert torch.equal(ours(x), expected)
    assert len(list((tmp_path / "int8").glob("*.safetensors"))) == 1
    # A bare Linear (the head) is converted on its own.
    head = torch.nn.Linear(64, 300, bias=False)
    expected_head = torch_quantized(torch.nn.Sequential(head), per_channel)[0](x)
    assert torch.equal(int8_dynamic._quantize_fbgemm(head, per_channel=per_channel)(x), expected_head)


def test_a_cached_start_does_not_quantize_and_other_weights_miss(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path))
    x = torch.randn(5, 64)
    first = int8_dynamic._quantize_fbgemm(small_model(), per_channel=True, cache=True)(x)

    def no_quantizing(*args):
        raise AssertionError("quantized again although the cache holds these weights")

    with monkeypatch.context() as patch:
        patch.setattr(int8_dynamic, "_quantized_weight", no_quantizing)
        assert torch.equal(int8_dynamic._quantize_fbgemm(small_model(), per_channel=True, cache=True)(x), first)
        with pytest.raises(AssertionError, match="quantized again"):  # another checkpoint's weights: a new entry
            int8_dynamic._quantize_fbgemm(small_model(seed=1), per_channel=True, cache=True)
        with pytest.raises(AssertionError, match="quantized again"):  # another scheme: a new entry
            int8_dynamic._quantize_fbgemm(small_model(), per_channel=False, cache=True)


def test_a_torn_entry_is_quantized_again(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path))
    x = torch.randn(5, 64)
    expected = int8_dynamic._quantize_fbgemm(small_model(), per_channel=True, cache=True)(x)
    (entry,) = (tmp_path / "int8").glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:100])
    assert int8_weights_cache.load(entry) is None
    assert torch.equal(int8_dynamic._quantize_fbgemm(small_model(), per_channel=True, cache=True)(x), expected)
    assert int8_weights_cache.load(entry) is not None  # rewritten whole
