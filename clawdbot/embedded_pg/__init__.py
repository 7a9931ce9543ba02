"""Embedded PostgreSQL for machines without DATABASE_URL (see ``server``)."""
