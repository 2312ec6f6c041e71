"""Backup profiles: folders stored on a schedule, pruned by restic's retention rules."""
