# The forktrace collector, built from this repository.
#   docker build -f deploy/collector.Dockerfile -t forktrace-collector .
# Build context: the repository root (deploy/docker-compose.yml sets it).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FORKTRACE_DATA_DIR=/var/lib/forktrace

WORKDIR /src
COPY pyproject.toml README.md ./
COPY instrumentation ./instrumentation
COPY collector ./collector
COPY dashboards ./dashboards
RUN pip install ".[collector]" \
    && useradd --system --uid 10001 --home-dir /var/lib/forktrace forktrace \
    && mkdir -p /var/lib/forktrace \
    && chown forktrace /var/lib/forktrace

USER forktrace
WORKDIR /var/lib/forktrace
VOLUME ["/var/lib/forktrace"]
# OTLP/gRPC and OTLP/HTTP.
EXPOSE 4317 4318
ENTRYPOINT ["forktrace"]
# Listen on every interface inside the container; compose publishes the ports on 127.0.0.1.
CMD ["up", "--host", "0.0.0.0"]
