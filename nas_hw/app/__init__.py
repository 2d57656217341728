"""The application layer: the ``nas-hw`` commands and the Hydra app (the only Hydra importer)."""
