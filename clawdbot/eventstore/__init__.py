"""The append-only event store shared by both apps (see ``store`` and ``projections``)."""
