"""factory-edge gateway agent: sources, inference, durable outbox, MQTT link."""

__version__ = "0.1.0"
