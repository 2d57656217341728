"""Search-space machinery: choice points, candidate tables, penalties and callbacks."""
