"""The cloud side of factory-edge: database, migrations, MQTT ingest, HTTP API, Celery tasks, CLIs.

Imports only ``protocol`` of ours: the cloud meets the edge agent on the wire, never in code.
"""
