"""The CPU's instruction sets and llama.cpp's kernels, as the worker log and `make bench` show."""

from __future__ import annotations

from pathlib import Path

from llm_worker import cpu_info


def test_the_watched_instruction_sets_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma f16c avx512f avx512bw avx512_vnni\n"
        "processor\t: 1\nflags\t\t: fpu sse2 avx2 fma f16c avx512f avx512bw avx512_vnni\n"
    )
    assert cpu_info.cpu_features(cpuinfo) == ["avx2", "fma", "f16c", "avx512f", "avx512bw",
                                              "avx512_vnni"]  # fmt: skip
    assert cpu_info.cpu_features(tmp_path / "missing") == []


def test_the_kernels_are_those_llama_cpp_reports_on() -> None:
    kernels = cpu_info.llama_kernels()
    assert kernels, "llama.cpp reports no CPU kernel"
    assert all(name.isupper() or name[0].isupper() for name in kernels)
    assert "kernels: " + " ".join(kernels) in cpu_info.describe()
