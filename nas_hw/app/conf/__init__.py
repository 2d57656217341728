"""The Hydra config tree of nas-hw search and nas-hw profile (package data)."""
