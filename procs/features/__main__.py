"""Entry point of the supervised program `features`: wiring only (see app.py and worker.py)."""

from procs.features.app import main
from shared.service import run_service

raise SystemExit(run_service("features", main))
