"""What the machine can do fast. For now: whether bf16 on the CPU is native or emulated.

torch runs CPU bf16 matrix products through oneDNN, which is fast only with bf16 instructions:
AVX512-BF16 or AMX on x86, BF16 on Arm. Without them each product is emulated. Measured on an AMD
EPYC with avx512_bf16 (no AMX), one thread, a 2-layer d256 model, one training step: bf16 at 1.54×
the speed of fp32; with oneDNN capped below bf16 (ONEDNN_MAX_CPU_ISA=AVX512_CORE) 0.57×, and capped
to AVX2 0.05×. So `train.bf16: true` on such a CPU earns a warning, not an error: it still runs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # /proc/cpuinfo names: x86 (first two) and Arm
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) below the first x86 ISA with bf16 instructions.
ISA_CAPS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo ("flags" on x86, "Features" on Arm); empty when
    the file is missing (macOS, Windows) or has no such line."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def slow_bf16_reason(device_type: str, flags: frozenset[str] | None = None,
                     isa_cap: str | None = None) -> str | None:
    """Why bf16 on `device_type` would be slow here, or None when it is native or unknown.

    `flags` defaults to this CPU's, `isa_cap` to $ONEDNN_MAX_CPU_ISA. Only a CPU that reports its
    flags and lacks every bf16 one (or a cap that hides them) gets a reason: silence when unsure.
    """
    if device_type != "cpu":
        return None
    flags = cpu_flags() if flags is None else flags
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA") if isa_cap is None else isa_cap
    if isa_cap and isa_cap.upper() in ISA_CAPS_WITHOUT_BF16:
        missing = f"ONEDNN_MAX_CPU_ISA={isa_cap} hides the CPU's bf16 instructions"
    elif flags and not flags & BF16_FLAGS:
        missing = (f"this CPU has none of the bf16 instructions {sorted(BF16_FLAGS)} "
                   f"(torch CPU capability {torch.backends.cpu.get_cpu_capability()})")
    else:
        return None
    return (f"train.bf16: true on the CPU, but {missing}: bf16 is emulated and can run many times slower "
            "than fp32 (0.05x measured at d256); set train.bf16: false unless you are measuring bf16 itself")


def warn_if_slow_bf16(bf16: bool, device: torch.device | str, flags: frozenset[str] | None = None) -> None:
    """The training loop's check: a RuntimeWarning when bf16 is requested where it is emulated."""
    reason = slow_bf16_reason(torch.device(device).type, flags) if bf16 else None
    if reason:
        warnings.warn(reason, RuntimeWarning, stacklevel=2)
