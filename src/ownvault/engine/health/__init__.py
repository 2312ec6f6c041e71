"""Audits, the deep check, repair, the health log and the status verdict."""
