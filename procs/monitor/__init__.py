"""The monitor: alerts off the box (Apprise), a dead-man's switch and Prometheus metrics; it never trades."""
