"""Kombu's filesystem transport (the embedded queue) with atomic message files.

Kombu creates a message file and then writes into it; a worker polling the folder can move the
file away in between and read it empty, which kills the worker. Here the message is written under
a name no consumer looks at, then renamed into place in one step. Both steps reach the disk
before ``put`` returns (the file is synced before the rename, the folder after it): the gateway
answers "queued" only then, and a message lost in a power cut would leave its job queued forever.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

from services.common.durable import fsync_dir

ALIAS = "zhikufs"


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: kombu's reader only takes "<stamp>_<uuid>.<queue>.msg" names.
        temporary = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(temporary, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
            fsync_dir(self.data_folder_out)
        except OSError as exc:
            raise ChannelError(f"cannot add file {final!r} to the queue folder") from exc


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
