"""Delivery of desired states to gateways, and staged rollouts."""
