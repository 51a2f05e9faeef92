"""The watchdog: reaps zombie CLOSE_WAIT sockets of our own programs and restarts hung ones through supervisord.

It never touches the Gateway (a Java process, the LISTEN owner of the Gateway port, the simulator), never
opens a connection to the Gateway port, and does nothing when it cannot tell who owns a socket.
"""
