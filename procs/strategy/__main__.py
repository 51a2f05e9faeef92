"""Entry point of the supervised program `strategy`: wiring only (see app.py and registry.py)."""

from procs.strategy.app import main
from shared.service import run_service

raise SystemExit(run_service("strategy", main))
