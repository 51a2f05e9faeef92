"""Exit codes, named once: every program, supervisord.conf (exitcodes = 0,78) and every command read them here.

Programs (supervised): OK, ERROR (restarted), TEMPFAIL (restarted; also SIGHUP), CONFIG (never restarted: fix the
setting). Commands add USAGE (a bad argument: one line, nothing changed) and UNAVAILABLE (no one answers).
gateway-health speaks Nagios: OK 0, WARNING 1, CRITICAL 2, UNKNOWN 3. It must never hold anything but numbers.
"""

from __future__ import annotations

OK = 0
ERROR = 1  # unexpected error (a program: supervisord restarts it); a command: it did not do what was asked
REFUSED = 1  # gateway-sim-ctl: the simulator refused the command
USAGE = 2  # a bad command line (argparse's own code)
UNAVAILABLE = 69  # EX_UNAVAILABLE: nobody answers (no simulator on that port)
TEMPFAIL = 75  # EX_TEMPFAIL: a temporary failure or SIGHUP; supervisord starts it again
CONFIG = 78  # EX_CONFIG: a setting is wrong; supervisord is told not to restart it

# gateway-health: Nagios plugin codes
NAGIOS_OK = 0
NAGIOS_WARNING = 1
NAGIOS_CRITICAL = 2
NAGIOS_UNKNOWN = 3
