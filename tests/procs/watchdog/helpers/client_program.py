"""A stand-in supervised program for the watchdog's tests: heartbeats like every program, and optionally
holds a TCP client socket it never reads (so it sits in CLOSE_WAIT once the peer closes) or freezes itself.

usage: client_program.py PROGRAM [--connect PORT] [--freeze-after SECONDS] [--undumpable]
It only connects to the loopback listener a test made for it, never to a real Gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import socket
import sys

from shared.service import Service, run_service

PR_SET_DUMPABLE = 4


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("program")
    p.add_argument("--connect", type=int, default=0)
    p.add_argument("--freeze-after", type=float, default=0.0)
    p.add_argument("--undumpable", action="store_true")
    args = p.parse_args()
    if (
        args.undumpable
    ):  # our /proc/<pid> files become root's: no other non-root user can see whose socket it is
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)

    async def run(svc: Service) -> None:
        held = socket.create_connection(("127.0.0.1", args.connect)) if args.connect else None
        svc.set_state("READY")
        if args.freeze_after:
            await asyncio.sleep(args.freeze_after)
            os.kill(os.getpid(), signal.SIGSTOP)  # hung: no more heartbeats until someone sends SIGCONT
        await svc.stop.wait()
        if held is not None:
            held.close()

    return run_service(args.program, run)


if __name__ == "__main__":
    sys.exit(main())
