"""The factory-edge wire contract: topics, message schemas and the model manifest.

Every part of the platform (edge agent, cloud, simulators, training) meets the others only
through this package and the wire, so it imports nothing else of ours.
"""

from protocol.messages import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION"]
