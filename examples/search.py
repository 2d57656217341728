"""The hardware-aware search, as ``nas-hw search`` runs it (a thin wrapper over the packaged
Hydra app; the config tree is ``nas_hw/app/conf``)::

    python examples/search.py                                   # DARTS, graph estimator, CPU, digits
    python examples/search.py estimator=module search=proxyless latency.weight=0.3
    python examples/search.py -m latency.weight=0.1,0.3,1 seed=0,1,2
"""
import sys

from nas_hw.app.search import main

if __name__ == "__main__":
    sys.exit(main())
