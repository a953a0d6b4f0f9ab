"""Batch size from free device memory; a window that cannot fit is a clear error, not a crash."""

from __future__ import annotations

import pytest
import torch

from nttracks.config import parse_config
from nttracks.errors import DeviceMemoryError
from nttracks.memory import CPU_BATCH, HEADROOM, MAX_BATCH, auto_batch_size, batch_for_memory
from nttracks.models.toy import BaseIdentityModel
from nttracks.planning import RunRequest, plan_run

GIB = 2**30


def test_batch_for_memory_is_the_largest_batch_that_fits() -> None:
    # 80 GiB free: 68 GiB usable; 4 GiB fixed; 3 GiB a window -> 64 // 3 = 21 windows
    assert HEADROOM == 0.85
    assert batch_for_memory(80 * GIB, 4 * GIB, 3 * GIB) == 21
    assert batch_for_memory(80 * GIB, 4 * GIB, 3 * GIB, cap=16) == 16
    assert batch_for_memory(80 * GIB, 0, 1) == MAX_BATCH
    # exactly one window's room, and not quite
    assert batch_for_memory(100, 5, 80) == 1
    assert batch_for_memory(100, 6, 80) == 0


def test_the_cpu_batch_is_fixed() -> None:
    assert auto_batch_size(BaseIdentityModel(), 1200, torch.device("cpu")) == CPU_BATCH


def test_batch_size_override_reaches_every_family_and_the_plan() -> None:
    config = parse_config({"families": {"toy": {"window": 1200, "batch_size": 3}}})
    plan = plan_run(RunRequest(genome="demo", config=config, chroms=("chr2",), batch_size=5), dry_run=True)
    assert plan.families[0].settings.batch_size == 5
    assert "batch 5)" in plan.summary()
    auto = plan_run(RunRequest(genome="demo", config=parse_config({"families": {"toy": {}}}), chroms=("chr2",)),
                    dry_run=True)
    assert auto.families[0].settings.batch_size is None
    assert "batch auto)" in auto.summary()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_batch_is_measured_and_a_window_too_large_is_named() -> None:
    device = torch.device("cuda")
    n = auto_batch_size(BaseIdentityModel().to(device), 1200, device)
    assert 1 <= n <= MAX_BATCH

    class Greedy(torch.nn.Module):  # needs twice the GPU's memory for any window
        def forward(self, codes: torch.Tensor) -> torch.Tensor:
            total = torch.cuda.get_device_properties(device).total_memory
            return torch.empty(2 * total, dtype=torch.uint8, device=device)

    with pytest.raises(DeviceMemoryError, match=r"one window of 30,000 bp does not fit in the .* GiB free"):
        auto_batch_size(Greedy(), 30_000, device)


def test_compile_setting_wraps_the_model_and_keeps_what_the_pipeline_reads() -> None:
    from nttracks.families import CheckpointSettings, compiled

    model = BaseIdentityModel()
    assert compiled(model, CheckpointSettings(checkpoint="x")) is model
    fast = compiled(model, CheckpointSettings(checkpoint="x", compile=True))  # compiles lazily, on first call
    assert fast is not model and isinstance(fast, torch.nn.Module)
    assert (fast.channels, fast.geometry) == (model.channels, model.geometry)
    config = parse_config({"families": {"elements": {"checkpoint": "InstaDeepAI/segment_nt", "compile": True}}})
    assert config.families["elements"].compile is True


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_batch_that_runs_out_of_memory_says_to_lower_the_batch_size() -> None:
    import numpy as np

    from nttracks.predict import predict

    class OutOfMemory(torch.nn.Module):
        def forward(self, codes: torch.Tensor) -> torch.Tensor:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    windows = [(i, np.zeros(1200, dtype=np.uint8)) for i in range(4)]
    with pytest.raises(DeviceMemoryError, match=r"a batch of 4 window\(s\) of 1,200 bp .* smaller --batch-size"):
        list(predict(OutOfMemory(), windows, batch_size=4, device=torch.device("cuda")))
