"""Helpers other test packages import: `tests.support.sim.running_sim` (the gateway simulator as a subprocess)."""
