"""bf16 on a CPU without bf16 instructions is emulated and many times slower: warn."""

import platform
import warnings
from pathlib import Path

import pytest

from lengthgen.hardware import cpu_flags, slow_bf16_reason, warn_if_slow_bf16

SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512bw", "avx512_bf16"})  # bf16 instructions, no AMX: fast
CASCADE_LAKE = frozenset({"avx2", "avx512f", "avx512bw", "avx512_vnni"})  # AVX512 without bf16
HASWELL = frozenset({"sse4_2", "avx", "avx2", "fma"})
GRAVITON3 = frozenset({"fp", "asimd", "sve", "bf16"})


@pytest.mark.parametrize("flags", [CASCADE_LAKE, HASWELL])
def test_cpu_without_bf16_instructions_gets_a_reason(flags):
    reason = slow_bf16_reason("cpu", flags, isa_cap="")
    assert reason is not None and "train.bf16" in reason and "avx512_bf16" in reason


@pytest.mark.parametrize("flags", [SAPPHIRE_RAPIDS, ZEN4, GRAVITON3, frozenset()])
def test_native_or_unknown_cpus_get_none(flags):
    assert slow_bf16_reason("cpu", flags, isa_cap="") is None


def test_accelerators_get_none():
    assert slow_bf16_reason("cuda", HASWELL, isa_cap="") is None
    assert slow_bf16_reason("mps", HASWELL, isa_cap="") is None


def test_onednn_cap_below_bf16_gets_a_reason():
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in slow_bf16_reason("cpu", ZEN4, isa_cap="AVX2")
    assert slow_bf16_reason("cpu", ZEN4, isa_cap="AVX512_CORE_BF16") is None


def test_warning_only_when_bf16_is_requested(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    with pytest.warns(RuntimeWarning, match="train.bf16"):
        warn_if_slow_bf16(True, "cpu", HASWELL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_slow_bf16(False, "cpu", HASWELL)
        warn_if_slow_bf16(True, "cpu", ZEN4)
        warn_if_slow_bf16(True, "cuda:0", HASWELL)


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists() or platform.machine() != "x86_64",
                    reason="reads the x86 flags line of Linux's /proc/cpuinfo")
def test_flags_read_from_this_machine():
    line = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
    assert cpu_flags() == frozenset(line.split(":", 1)[1].split()) and "fpu" in cpu_flags()
