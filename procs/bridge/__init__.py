"""The bridge: the one process that holds the IB API session and publishes what the Gateway says."""
