"""Dagster definitions for the contacts sync: assets, resources, partitions, schedules."""
