"""Entry point of the supervised `bridge` program: wiring only (`python -m procs.bridge`)."""

from procs.bridge.app import main
from shared.service import run_service

raise SystemExit(run_service("bridge", main))
