"""``nas-hw report``'s library: load a network, measure it layer by layer, write the report."""
from .layers import LayerRow, NetworkReport, build_report
from .loader import LoadedNetwork, load_network, parse_input_shape
from .writers import format_table, write_bar_chart, write_csv, write_json

__all__ = ["LoadedNetwork", "load_network", "parse_input_shape", "LayerRow", "NetworkReport",
           "build_report", "format_table", "write_csv", "write_json", "write_bar_chart"]
