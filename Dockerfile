# Loopwise: slim image, non-root, data on a volume, `loopwise serve` on port 4000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    LOOPWISE_CONFIG=/config/config.yaml \
    LOOPWISE_DATA_DIR=/data \
    LOOPWISE_HOST=0.0.0.0 \
    LOOPWISE_PORT=4000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY injectors ./injectors
COPY policies ./policies
RUN pip install . && useradd --create-home --uid 10001 loopwise && mkdir /data && chown loopwise /data

USER loopwise
VOLUME ["/data"]
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/healthz')"
# Mount your config at /config/config.yaml; LOOPWISE_* variables override what it says. The
# image listens on every address, so it needs a key: -e LOOPWISE_ACCESS__MASTER_KEY=sk-...
ENTRYPOINT ["loopwise", "serve"]
