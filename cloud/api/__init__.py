"""The HTTP API (FastAPI)."""

from cloud.api.app import create_app

__all__ = ["create_app"]
