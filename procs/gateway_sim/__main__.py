"""Entry point of the gateway simulator: `python -m procs.gateway_sim [flags]` (see app.py; supervisord runs it)."""

from procs.gateway_sim.app import main, read_command_line
from shared.service import run_service

raise SystemExit(run_service("gateway_sim", main, command_line=read_command_line))
