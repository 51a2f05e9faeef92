"""Entry point: python -m procs.monitor (started by supervisord)."""

from procs.monitor.app import main
from shared.service import run_service

raise SystemExit(run_service("monitor", main))
