"""FastAPI's TestClient, imported without starlette's httpx -> httpx2 deprecation warning.

starlette 1.x prefers the ``httpx2`` package and warns when it falls back to ``httpx``; with
``filterwarnings = error`` that warning would abort collection. The fallback works the same.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]
