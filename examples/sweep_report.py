"""``python examples/sweep_report.py DIR ...`` = ``nas-hw sweep-report DIR ...``: the table, plot and
claims of a sweep, generated from its multirun directories (nas_hw/app/sweep_report.py)."""
import sys

from nas_hw.app.sweep_report import main

if __name__ == "__main__":
    sys.exit(main())
