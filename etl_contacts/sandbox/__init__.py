"""A local Express-Chat-compatible API: for the demo, every test, and the benchmarks."""

from etl_contacts.sandbox.config import (
    DEMO_TOKEN,
    FAULT_KINDS,
    PRESETS,
    SILENT_FAULT_KINDS,
    SandboxConfig,
    preset,
)
from etl_contacts.sandbox.server import SandboxServer

__all__ = [
    "DEMO_TOKEN",
    "FAULT_KINDS",
    "PRESETS",
    "SILENT_FAULT_KINDS",
    "SandboxConfig",
    "SandboxServer",
    "preset",
]
