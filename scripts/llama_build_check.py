"""Refuse a llama-cpp-python build whose CPU kernels are known to break here.

A native build (``-march=native``) on a CPU with AMX (Intel Sapphire Rapids and later) compiles
ggml's AMX kernels; inside many virtual machines they produce garbage tokens or crash in
``llama_decode``. ``make`` builds with ``-DGGML_NATIVE=OFF`` (AVX2/FMA/F16C), but pip may hold an
older native wheel in its cache; exit status 1 tells the Makefile to rebuild without the cache.
"""

from __future__ import annotations

import sys

import llama_cpp


def main() -> int:
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    if "AMX_INT8 = 1" in info:
        print(f"llama-cpp-python was built with AMX kernels ({info.strip()}); rebuilding")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
