"""Alerts: rules, their evaluation and acknowledgement."""
