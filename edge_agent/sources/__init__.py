"""Frame-source plug-ins, registered explicitly by their config ``type`` key."""

from __future__ import annotations

import threading
from collections.abc import Callable

from edge_agent.config_sources import CameraSourceConfig, FolderSourceConfig, NotesSourceConfig, SourceConfig
from edge_agent.sources.base import FrameSink, Source
from edge_agent.sources.camera import CameraSource
from edge_agent.sources.folder import FolderSource
from edge_agent.sources.notes import NotesSource


def _camera(config: SourceConfig, sink: FrameSink, stop: threading.Event) -> Source:
    if not isinstance(config, CameraSourceConfig):
        raise TypeError(f"camera source got a {type(config).__name__}")
    return CameraSource(config, sink, stop)


def _folder(config: SourceConfig, sink: FrameSink, stop: threading.Event) -> Source:
    if not isinstance(config, FolderSourceConfig):
        raise TypeError(f"folder source got a {type(config).__name__}")
    return FolderSource(config, sink, stop)


def _notes(config: SourceConfig, sink: FrameSink, stop: threading.Event) -> Source:
    if not isinstance(config, NotesSourceConfig):
        raise TypeError(f"notes source got a {type(config).__name__}")
    return NotesSource(config, sink, stop)


# Explicit registry (not __subclasses__) so readers and mypy see every plug-in.
SOURCE_TYPES: dict[str, Callable[[SourceConfig, FrameSink, threading.Event], Source]] = {
    "camera": _camera,
    "folder": _folder,
    "notes": _notes,
}


def build_source(config: SourceConfig, sink: FrameSink, stop: threading.Event) -> Source:
    """Instantiate the plug-in registered for ``config.type``."""
    try:
        factory = SOURCE_TYPES[config.type]
    except KeyError:
        raise ValueError(
            f"source {config.name}: unknown type {config.type!r}; known: {sorted(SOURCE_TYPES)}"
        ) from None
    return factory(config, sink, stop)


__all__ = [
    "SOURCE_TYPES",
    "CameraSource",
    "FolderSource",
    "FrameSink",
    "NotesSource",
    "Source",
    "build_source",
]
