"""kombu's filesystem transport with atomic message files, for the embedded demo's Celery.

kombu 5.x creates a message file and only then writes it, so a worker polling the same folder
can move and read it while it is still empty (JSONDecodeError in the worker, a lost task). Here
a message is written under ``tmp/`` and renamed into the queue folder complete: readers only
ever see whole files.
"""

from __future__ import annotations

import json
import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem

ALIAS = "factoryfs"


class Channel(filesystem.Channel):
    """A filesystem channel whose ``_put`` is write-then-rename."""

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staging = os.path.join(self.data_folder_out, "tmp")
        os.makedirs(staging, exist_ok=True)
        tmp = os.path.join(staging, name)
        with open(tmp, "wb") as fh:
            # The payload is kombu's envelope of str/dict values (the body is already serialized).
            fh.write(json.dumps(payload).encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, os.path.join(self.data_folder_out, name))


class Transport(filesystem.Transport):
    """The filesystem transport with atomic puts."""

    Channel = Channel


def register() -> str:
    """Make ``factoryfs://`` resolve to this transport; return the alias."""
    TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
    return ALIAS
