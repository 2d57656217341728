"""Measuring: devices, timing, signatures, graph walks and the persistent store.

Nothing here knows about search spaces or estimators; it uses only ``errors``, ``constants``
and ``checks`` of nas_hw.
"""
