"""Entry point of the supervised watchdog program: wiring only (`python -m procs.watchdog`)."""

from procs.watchdog.app import main
from shared.service import run_service

raise SystemExit(run_service("watchdog", main))
