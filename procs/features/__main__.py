"""Entry point of the supervised program `features`: wiring only (see service.py and worker.py)."""

from procs.features.service import main
from shared.service import run_service

raise SystemExit(run_service("features", main))
