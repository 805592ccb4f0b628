"""Over-the-air model updates on the gateway: signed releases, atomic slot swaps, health-checked commits."""

from edge_agent.ota.client import OtaClient
from edge_agent.ota.slot import boot_manifest
from edge_agent.ota.store import Pointer, SlotStore

__all__ = ["OtaClient", "Pointer", "SlotStore", "boot_manifest"]
