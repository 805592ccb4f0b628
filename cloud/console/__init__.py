"""The operators' web console: server-rendered pages over the cloud's own API, served at ``/``.

One module per page in :mod:`cloud.console.pages`, assembled in :mod:`cloud.console.main`.
"""

from __future__ import annotations

from cloud.console.main import router

__all__ = ["router"]
