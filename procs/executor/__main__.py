"""Entry point of the executor: `python -m procs.executor` (supervisord runs it). Wiring only; see app.py."""

from procs.executor.app import main
from shared.service import run_service

raise SystemExit(run_service("executor", main))
