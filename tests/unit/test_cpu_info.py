"""The CPU's instruction sets and llama.cpp's kernels, as the worker log and `make bench` show."""

from __future__ import annotations

import runpy
from pathlib import Path

from llm_worker import cpu_info

REPO = Path(__file__).resolve().parents[2]


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


AVX512_CPU = ("flags\t\t: fpu avx2 fma f16c avx512f avx512dq avx512cd avx512bw avx512vl "
              "avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16\n")  # fmt: skip


def test_a_build_here_gets_the_avx512_kernels_this_cpu_has_and_never_amx(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(AVX512_CPU)
    assert cpu_info.build_kernels(cpuinfo) == ["AVX512", "AVX512_VNNI", "AVX512_VBMI",
                                               "AVX512_BF16"]  # fmt: skip
    assert cpu_info.cmake_args(cpuinfo) == (
        "-DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON"
    )
    assert "AMX" not in cpu_info.cmake_args(cpuinfo)


def test_a_cpu_without_full_avx512_gets_the_portable_build(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    # AVX-512 F without BW/VL (Knights Landing) and an AVX2-only CPU: no AVX-512 kernels.
    cpuinfo.write_text("flags\t\t: fpu avx2 fma f16c avx512f avx512cd avx512_vnni\n")
    assert cpu_info.cmake_args(cpuinfo) == ""
    cpuinfo.write_text("flags\t\t: fpu avx2 fma f16c\n")
    assert cpu_info.build_kernels(cpuinfo) == []
    assert cpu_info.cmake_args(tmp_path / "missing") == ""


def test_the_build_check_asks_for_a_rebuild_when_a_kernel_make_chose_is_missing() -> None:
    # pip's wheel cache ignores CMAKE_ARGS: make rebuilds when the installed build lacks a kernel.
    check = runpy.run_path(str(REPO / "scripts" / "llama_build_check.py"))["main"]
    built = cpu_info.llama_kernels()
    assert check([k for k in built if k.startswith("AVX")]) == 0
    assert check(["AVX512_NOT_A_KERNEL"]) == 1
