"""The child side of ingestion.bounded_parse: cap this process, extract one file, print JSON.

``python -m ingestion.parse_child KIND FILE LIMITS_JSON``; the parent reads the exit code and
``{"sections": [{"location", "text", "tabular"}, ...]}`` or ``{"error": ..., "error_type": ...}``
from standard output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ingestion.bounded_parse import FAILED, OK, OUT_OF_MEMORY
from services.common.errors import ZhikuError


def main() -> int:
    """The child: cap its own address space, then extract and print JSON."""
    import resource

    kind, path, limits_json = sys.argv[1:4]
    limits = json.loads(limits_json)  # ParsingSettings, already validated by the parent
    cap = int(limits["max_memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        from ingestion.loaders import extract_sections  # the parsers load under the cap

        result: dict[str, object] = {"sections": extract_sections(Path(path), kind, limits)}
    except MemoryError:
        return OUT_OF_MEMORY
    except ZhikuError as exc:
        result = {"error": exc.message, "error_type": exc.error_type}
    # Bytes, not sys.stdout: its encoding follows the locale, which may not hold Chinese.
    sys.stdout.buffer.write(json.dumps(result, ensure_ascii=False).encode())
    return OK if "sections" in result else FAILED


if __name__ == "__main__":
    sys.exit(main())
