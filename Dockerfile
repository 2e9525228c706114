# syntax=docker/dockerfile:1
# The project's image: `cdss serve`, `cdss sync --follow`, `cdss worker`, `cdss orders run`.
# Two stages: the build stage installs into a virtual environment (with CPU torch, from the
# PyTorch CPU index: PyPI's default torch is the multi-GB CUDA build); the runtime stage copies
# only that environment and the source, and runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cdss cdss
COPY fhir_facade fhir_facade
COPY adapters adapters
COPY cds_hooks cds_hooks
COPY cdw cdw
COPY models models
COPY smart_app smart_app
COPY simulators simulators
# Editable: the package data (migrations, CSVs, the SMART app's static files) is read from
# /app, which the runtime stage copies to the same path.
RUN pip install -e .

FROM python:3.11-slim-bookworm AS runtime
# libgomp1: LightGBM's OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 cdss \
    && useradd --system --uid 10001 --gid cdss --home-dir /var/lib/cdss --shell /usr/sbin/nologin cdss \
    && mkdir -p /var/lib/cdss /var/lib/orthanc/worklists \
    && chown -R cdss:cdss /var/lib/cdss /var/lib/orthanc/worklists
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CDSS_DATA_DIR=/var/lib/cdss \
    CDSS_HOST=0.0.0.0 \
    CDSS_PORT=8080
WORKDIR /var/lib/cdss
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CDSS_PORT', '8080') + '/healthz', timeout=4)"]
ENTRYPOINT ["cdss"]
CMD ["serve", "--workers", "4"]
