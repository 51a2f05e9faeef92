"""The stack's commands (stack, trader, gateway-health, gateway-sim-ctl, backtest): one module each, with a
main(argv=None) that pyproject.toml's [project.scripts] and the bin/ shims both call.

Importing this package must never need anything outside the standard library: bin/ shims import launch.py
from it under whatever python3 is first on PATH, before they switch to the stack's virtualenv.
"""
