"""The child process that extracts a PDF's text (ingestion.loaders runs it, bounded).

A hostile or broken PDF can make a parser loop or allocate without end; in a child it only
costs that child. It imports nothing of zhiku, so it runs as a plain script:
``python pdf_extract.py FILE MAX_PAGES MAX_MEMORY_MB`` prints ``{"pages": [...]}`` or
``{"error": "..."}``.
"""

from __future__ import annotations

import json
import sys

OK, FAILED, OUT_OF_MEMORY = 0, 2, 3


def _extract(path: str, max_pages: int) -> dict[str, object]:
    from pypdf import PdfReader  # only the child pays for the import

    try:
        reader = PdfReader(path)
        count = len(reader.pages)
        if count > max_pages:
            return {
                "error": f"the PDF has {count} pages, over the limit of {max_pages} "
                "(ZHIKU_PARSING__PDF_MAX_PAGES)"
            }
        return {"pages": [page.extract_text() or "" for page in reader.pages]}
    except MemoryError:
        raise
    # pypdf raises many unrelated types (PdfReadError, ValueError, KeyError…) on damaged files.
    except Exception as exc:
        return {"error": f"could not read PDF: {str(exc).strip() or type(exc).__name__}"}


def main() -> int:
    """The child: cap its own address space, extract, print JSON."""
    import resource

    path, max_pages, max_memory_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cap = max_memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        result = _extract(path, max_pages)
    except MemoryError:
        return OUT_OF_MEMORY
    sys.stdout.write(json.dumps(result, ensure_ascii=False))
    return OK if "pages" in result else FAILED


if __name__ == "__main__":
    sys.exit(main())
