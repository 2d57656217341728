"""A small DARTS / ProxylessNAS search loop with hardware-aware callbacks and penalties."""
