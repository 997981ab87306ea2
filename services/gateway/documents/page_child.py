"""The child side of a page preview: cap this process, render one PDF page, print JSON.

``python -m services.gateway.documents.page_child FILE PAGE HIGHLIGHT MAX_MEMORY_MB`` prints
``{"png": BASE64}`` or ``{"error": ..., "error_type": ...}`` (services.common.bounded_child).
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

from services.common.bounded_child import child_main


def main() -> int:
    """The child: cap its own address space, then render and print JSON."""
    path, page, highlight, max_memory_mb = sys.argv[1:5]

    def render() -> dict[str, Any]:
        from services.gateway.documents.pages import render_page_png  # PDFium loads under the cap

        png = render_page_png(Path(path), int(page), highlight or None)
        return {"png": base64.b64encode(png).decode("ascii")}

    return child_main(int(max_memory_mb), render)


if __name__ == "__main__":
    sys.exit(main())
