"""What the CPU offers and which kernels llama.cpp was built with, printed at worker start and in
``make bench``, and the build flags that give this CPU its fastest safe kernels.

``make install`` builds llama.cpp from source on the machine that runs it, so it may use every
instruction set this CPU has: AVX-512 (with VNNI, BF16, VBMI) evaluates prompts ~1.4x faster than
the AVX2 kernels of a portable build (raw prompt evaluation 89 → 125 tokens/s on a 2-core Xeon).
AMX never: its kernels return garbage or crash in many virtual machines
(scripts/llama_build_check.py).

    python -m llm_worker.cpu_info --cmake-args   # the -DGGML_… flags for this CPU
"""

from __future__ import annotations

import sys
from pathlib import Path

# The instruction sets ggml has kernels for, as /proc/cpuinfo names them.
WATCHED = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni",
           "amx_int8", "amx_bf16")  # fmt: skip
# ggml's CMake switch and its kernel name in llama.cpp's system info, for each instruction set a
# portable (-DGGML_NATIVE=OFF) build leaves off; AVX-512 ones only with AVX-512 F/BW/DQ/CD/VL.
AVX512_BASE = ("avx512f", "avx512bw", "avx512dq", "avx512cd", "avx512vl")
AVX512_EXTRAS = {"avx512_vnni": "AVX512_VNNI", "avx512vbmi": "AVX512_VBMI",
                 "avx512_bf16": "AVX512_BF16"}  # fmt: skip


def _flags(cpuinfo: Path) -> list[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return []
    return next((line.split(":", 1)[1].split() for line in text.splitlines()
                 if line.startswith("flags")), [])  # fmt: skip


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The watched instruction sets this CPU has (empty where /proc/cpuinfo is not readable)."""
    flags = _flags(cpuinfo)
    return [name for name in WATCHED if name in flags]


def build_kernels(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The kernels beyond AVX2 a build on this CPU should have (``AVX512``, ``AVX512_VNNI``…)."""
    flags = _flags(cpuinfo)
    if not all(name in flags for name in AVX512_BASE):
        return []
    return ["AVX512"] + [kernel for flag, kernel in AVX512_EXTRAS.items() if flag in flags]


def cmake_args(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``-DGGML_AVX512=ON …`` for this CPU, added to the portable build's flags (never AMX)."""
    return " ".join(f"-DGGML_{kernel}=ON" for kernel in build_kernels(cpuinfo))


def llama_kernels() -> list[str]:
    """The CPU kernels llama.cpp was built with (``AVX2``, ``AVX512``…), from its system info."""
    import llama_cpp  # not needed to choose the build flags, before llama.cpp is installed

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    pairs = (part.strip().split(" = ") for part in info.replace("CPU :", "|").split("|"))
    return [p[0] for p in pairs if len(p) == 2 and p[1].strip() == "1"]


def describe() -> str:
    """One line: the CPU's instruction sets, then the kernels in use."""
    return f"CPU has {' '.join(cpu_features()) or 'unknown'}; llama.cpp kernels: " + " ".join(
        llama_kernels()
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--cmake-args"]:
        sys.exit(__doc__)
    print(cmake_args())
