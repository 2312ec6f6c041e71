"""Providers and the placement policy: rebalancing shares over the fleet."""
