"""The child side of ingestion.bounded_parse: cap this process, extract one file, print JSON.

``python -m ingestion.parse_child KIND FILE LIMITS_JSON``; the parent reads the exit code and
``{"sections": [{"location", "text", "tabular"}, ...]}`` or ``{"error": ..., "error_type": ...}``
from standard output (services.common.bounded_child).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.common.bounded_child import child_main


def main() -> int:
    """The child: cap its own address space, then extract and print JSON."""
    kind, path, limits_json = sys.argv[1:4]
    limits = json.loads(limits_json)  # ParsingSettings, already validated by the parent

    def extract() -> dict[str, Any]:
        from ingestion.loaders import extract_sections  # the parsers load under the cap

        return {"sections": extract_sections(Path(path), kind, limits)}

    return child_main(int(limits["max_memory_mb"]), extract)


if __name__ == "__main__":
    sys.exit(main())
