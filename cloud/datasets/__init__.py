"""Captures and datasets: start captures on gateways, keep what they upload, label and export it."""
