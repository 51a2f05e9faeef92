"""Small pieces every benchmark uses: percentiles and stopping a child process by its pid."""

from __future__ import annotations

import subprocess


def percentile(values: list[float], q: float) -> float:
    """The value at quantile q (0..1) of `values`, nearest-rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a child we started, then kill it if it does not go."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
