"""Entry point of the supervised program `strategy`: wiring only (see service.py and registry.py)."""

from procs.strategy.service import main
from shared.service import run_service

raise SystemExit(run_service("strategy", main))
