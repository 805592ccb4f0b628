"""Defect thumbnails and alerts: storage, retention, rule evaluation and acknowledgement."""
