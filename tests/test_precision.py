"""Which precision an animator runs in: half precision on GPUs, bf16 only on CPUs that compute in it natively."""

import pytest
import torch

import generation.precision as precision
from generation.backends import BackendOptions, create_backend
from tests.factories import write_official_style_checkpoint


@pytest.mark.parametrize("native", [True, False])
def test_the_cpu_runs_bf16_only_where_it_computes_in_it_natively(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert precision.half_dtype("bf16", cpu) == (torch.bfloat16 if native else None)
    assert precision.half_dtype("fp16", cpu) is None  # fp16 convolutions on a CPU are slower than fp32's
    assert precision.half_dtype("fp32", cpu) is None and precision.half_dtype("fp16", gpu) == torch.float16
    with pytest.raises(ValueError, match="choose fp32, bf16 or fp16"):
        precision.half_dtype("int8", cpu)


@pytest.mark.parametrize("flags, expected", [("fpu sse avx512f avx512_bf16", True), ("fpu amx_bf16 amx_tile", True),
                                             ("fpu sse avx2 avx512f", False), (None, False)])  # fmt: skip
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, flags, expected):
    cpuinfo(flags)
    assert precision.cpu_has_native_bf16() is expected  # generation.precision's name for dataset_script.hardware's


@pytest.mark.parametrize("native", [True, False])
def test_the_fomm_backend_runs_and_reports_what_the_cpu_allows(monkeypatch, tmp_path, native):
    from generation.fomm import build_vox256

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    checkpoint = tmp_path / "vox-cpk.pth.tar"
    write_official_style_checkpoint(checkpoint, build_vox256())
    backend = create_backend("fomm", BackendOptions(checkpoint, torch.device("cpu"), "bf16"))
    assert backend.precision == ("bf16" if native else "fp32")
    assert backend.options.autocast_dtype == (torch.bfloat16 if native else None)
    layout = torch.channels_last if native else torch.contiguous_format  # oneDNN's bf16 convolutions want it
    assert next(backend.generator.bottleneck.parameters()).is_contiguous(memory_format=layout)
    assert create_backend("warp", BackendOptions()).precision == "fp32"  # no network to run in half precision
