"""Sharing grants: issuing, revoking and refreshing them, and reading received ones."""
