"""The feed side's URL paths, named once: the URLconf, the ASGI fast path, the live page and
the default delivery target (settings) all use these. Pure constants, no Django."""

INGEST_PATH = "/internal/milestones/ingest"
BATCH_INGEST_PATH = "/internal/milestones/ingest/batch"
LATEST_PATH = "/api/milestones/latest"
LIVE_PATH = "/ws/milestones/"
