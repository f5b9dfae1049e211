"""Which torch device a run uses, from the `device` config key, and what the machine is."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from nmt.utils.errors import UserError
from nmt.utils.precision import native_16_bit


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU; `cpu`, `cuda`, `cuda:N` as given.

    Raises:
        UserError: for a malformed name or a CUDA device this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device={name}: CUDA is not available on this machine (use device=cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device={name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise UserError(f"device={name!r}: use auto, cpu, cuda or cuda:N")
    return device


CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16")
"""The instruction-set flags that decide a CPU's speed paths: AVX2 and AVX-512 for fp32, native bf16
(AVX512-BF16, AMX) and fp16 products."""


def describe_machine(device: torch.device) -> dict[str, Any]:
    """CPU model, its instruction-set features (as the CPU reports them) and the capability
    torch uses (which `ATEN_CPU_CAPABILITY` / `ONEDNN_MAX_CPU_ISA` can lower), whether bf16 runs
    natively on `device`, logical CPUs, torch and Python versions, torch threads, device (and GPU)."""
    cpu, flags = platform.processor() or None, set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
        flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    return {
        "cpu": cpu,
        "cpu_features": [name for name in CPU_FEATURES if name in flags],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": native_16_bit(device, "bf16"),
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }
