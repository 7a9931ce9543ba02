# One image for every role of the pipeline: `python -m clawdbot.serve release|web|worker`
# (the Procfile's and docker-compose.yml's commands; `make run` runs the same two processes).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HOST=0.0.0.0 \
    PORT=8000

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir clawdbot orchestrator_app feed_app && pip install . && pip uninstall -y clawdbot
COPY . .
RUN pip install --no-deps -e . \
    && useradd --system --home-dir /app --no-create-home clawdbot \
    && mkdir -p logs var && chown clawdbot logs var

USER clawdbot
EXPOSE 8000
CMD ["python", "-m", "clawdbot.serve", "web"]
