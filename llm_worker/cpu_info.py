"""What the CPU offers and which kernels llama.cpp was built with, printed at worker start and in
``make bench``: the portable build runs AVX2 kernels even where the CPU has AVX-512, and prompt
evaluation speed depends on it."""

from __future__ import annotations

from pathlib import Path

import llama_cpp

# The instruction sets ggml has kernels for, as /proc/cpuinfo names them.
WATCHED = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni",
           "amx_int8", "amx_bf16")  # fmt: skip


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The watched instruction sets this CPU has (empty where /proc/cpuinfo is not readable)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return [name for name in WATCHED if name in flags]


def llama_kernels() -> list[str]:
    """The CPU kernels llama.cpp was built with (``AVX2``, ``AVX512``…), from its system info."""
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    pairs = (part.strip().split(" = ") for part in info.replace("CPU :", "|").split("|"))
    return [p[0] for p in pairs if len(p) == 2 and p[1].strip() == "1"]


def describe() -> str:
    """One line: the CPU's instruction sets, then the kernels in use."""
    return f"CPU has {' '.join(cpu_features()) or 'unknown'}; llama.cpp kernels: " + " ".join(
        llama_kernels()
    )
