"""The Java client's stand-in where no JDK is installed: started through a link named `java`, so the process is
named java (what the watchdog goes by: the name or the executable, never the language inside). Connects to a
loopback port, never reads, never closes; prints SIGNALLED if it is ever asked to stop (SIGTERM/SIGINT), so a
test can tell that nobody signalled it. Standard library only: it runs on the base interpreter, not the venv.

usage: java hold_socket.py PORT
"""

import signal
import socket
import sys
import time


def signalled(signum: int, frame: object) -> None:
    print("SIGNALLED", flush=True)
    sys.exit(0)


def main() -> None:
    held = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    signal.signal(signal.SIGTERM, signalled)
    signal.signal(signal.SIGINT, signalled)
    print("connected", held.getsockname()[1], flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
