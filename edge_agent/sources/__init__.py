"""Frame-source plug-ins, registered explicitly by their config ``type`` key."""

from __future__ import annotations

import threading

from edge_agent.config_sources import SourceConfig
from edge_agent.sources.base import FrameSink, Source, SourceSection
from edge_agent.sources.camera import CameraSource
from edge_agent.sources.folder import FolderSource
from edge_agent.sources.notes import NotesSource

# Explicit registry (not __subclasses__) so readers and mypy see every plug-in.
SOURCE_TYPES: dict[str, type[Source[SourceSection]]] = {
    "camera": CameraSource,
    "folder": FolderSource,
    "notes": NotesSource,
}


def build_source(config: SourceConfig, sink: FrameSink, stop: threading.Event) -> Source[SourceSection]:
    """Instantiate the plug-in registered for ``config.type``."""
    try:
        source_type = SOURCE_TYPES[config.type]
    except KeyError:
        raise ValueError(
            f"source {config.name}: unknown type {config.type!r}; known: {sorted(SOURCE_TYPES)}"
        ) from None
    if not isinstance(config, source_type.config_type):
        raise TypeError(f"{config.type} source got a {type(config).__name__}")
    return source_type(config, sink, stop)


__all__ = [
    "SOURCE_TYPES",
    "CameraSource",
    "FolderSource",
    "FrameSink",
    "NotesSource",
    "Source",
    "SourceSection",
    "build_source",
]
