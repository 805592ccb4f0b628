"""MQTT ingest: decode, store idempotently in batches, acknowledge what is committed."""

from cloud.ingest.decode import Inbound
from cloud.ingest.service import ingest_messages
from cloud.ingest.worker import IngestWorker

__all__ = ["Inbound", "IngestWorker", "ingest_messages"]
