"""Refuse a llama-cpp-python build whose CPU kernels are not those ``make`` asked for.

A native build (``-march=native``) on a CPU with AMX (Intel Sapphire Rapids and later) compiles
ggml's AMX kernels; inside many virtual machines they produce garbage tokens or crash in
``llama_decode``. ``make`` builds with ``-DGGML_NATIVE=OFF`` plus the AVX-512 kernels this CPU has
(``llm_worker.cpu_info.cmake_args``), but pip may hold a wheel built with other flags in its cache
(its cache key ignores CMAKE_ARGS). Exit status 1 tells the Makefile to rebuild without the cache.

    PYTHONPATH=. python scripts/llama_build_check.py [KERNEL ...]   # kernels the build must have
"""

from __future__ import annotations

import sys

from llm_worker.cpu_info import llama_kernels


def main(expected: list[str]) -> int:
    built = llama_kernels()
    if "AMX_INT8" in built:
        print(f"llama-cpp-python was built with AMX kernels ({' '.join(built)}); rebuilding")
        return 1
    missing = [kernel for kernel in expected if kernel not in built]
    if missing:
        names = " ".join(missing)
        print(f"llama-cpp-python lacks the {names} kernels ({' '.join(built)}); rebuilding")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
