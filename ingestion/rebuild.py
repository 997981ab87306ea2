"""Rebuild, while the worker runs, the indexes the retriever moved aside as unreadable.

The start-up reconciliation repairs every index when this worker starts; a retriever restarted
alone finds a corrupt index later and lists it in its /readyz. The watch asks for that list every
``CHECK_EVERY_S`` and queues one rebuild task, so the rebuild runs in the worker's own pool,
between ingestion jobs, never beside them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ingestion.pipeline import IngestionContext
from ingestion.reconcile import agree_indexes
from services.common.errors import ZhikuError
from services.common.retriever_client import RetrieverClient

logger = logging.getLogger(__name__)

REBUILD_TASK = "zhiku.rebuild_indexes"
CHECK_EVERY_S = 60.0


def rebuild_flagged(ctx: IngestionContext) -> list[int]:
    """Make the indexes agree with the database, then clear the flags seen before; their ids."""
    flagged = ctx.retriever.rebuild_needed()
    if not flagged:
        return []
    logger.warning("the retriever lost the indexes of knowledge bases %s: rebuilding", flagged)
    agree_indexes(ctx)
    for kb_id in flagged:
        ctx.retriever.rebuilt(kb_id)
    return flagged


def start_rebuild_watch(
    retriever: RetrieverClient, queue_rebuild: Callable[[], None], every_s: float = CHECK_EVERY_S
) -> threading.Thread:
    """Queue a rebuild whenever the retriever flags an index, checking every ``every_s``."""

    def run() -> None:
        while True:
            time.sleep(every_s)
            try:
                if retriever.rebuild_needed():
                    queue_rebuild()
            except ZhikuError as exc:  # the retriever is restarting: ask again next time
                logger.info("rebuild watch: retriever not answering: %s", exc.message)
            except Exception:  # the watch must outlive a broker outage
                logger.exception("rebuild watch: could not queue the rebuild")

    thread = threading.Thread(target=run, name="index-rebuild-watch", daemon=True)
    thread.start()
    return thread
