# syntax=docker/dockerfile:1
#
# seqcast images, from one file (BuildKit):
#   docker build -t seqcast:cpu .                                  service, ONNX Runtime on CPU
#   docker build -t seqcast:gpu --build-arg VARIANT=gpu .          service, onnxruntime-gpu on CUDA
#   docker build -t seqcast:trainer --target trainer .             trainer (PyTorch CPU wheels)
# The service images carry no PyTorch: they only read the artifact mounted at /artifacts.

ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---- bases: a Python interpreter and an empty virtual environment in /opt/venv ----------
FROM ${PYTHON_IMAGE} AS base-cpu
RUN python -m venv /opt/venv

FROM ${CUDA_IMAGE} AS base-gpu
# The distribution's current python3 and build tools: pinning Debian/Ubuntu package versions
# breaks the build whenever the archive moves on.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

# hadolint ignore=DL3006
FROM base-${VARIANT} AS base
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ---- builder: every wheel the service needs (compilers stay in this stage) ----------------
FROM base AS builder
ARG VARIANT
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY deploy/docker/requirements.py deploy/docker/requirements.py
COPY app app
COPY model model
RUN python deploy/docker/requirements.py --variant "${VARIANT}" > /wheels.txt \
    && pip wheel --wheel-dir /wheels -r /wheels.txt \
    && pip wheel --wheel-dir /wheels --no-deps . \
    && mv /wheels.txt /wheels/requirements.txt

# ---- trainer: PyTorch (CPU build) for `seqcast synth|train`; compose profile "train" -----
FROM base-cpu AS trainer
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# LightGBM (a trainer baseline) links the GNU OpenMP runtime, which the slim image lacks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 seqcast \
    && useradd --system --uid 10001 --gid seqcast --home-dir /home/seqcast --create-home seqcast \
    && mkdir -p /artifacts /data && chown seqcast:seqcast /artifacts /data
WORKDIR /src
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
COPY pyproject.toml README.md LICENSE ./
COPY app app
COPY model model
# The project itself, its dependencies bounded by pyproject.toml (torch already pinned above).
# hadolint ignore=DL3013
RUN pip install ".[train]"
COPY deploy/docker/train.sh /usr/local/bin/seqcast-train
COPY deploy/docker/publish.sh /usr/local/bin/seqcast-publish
USER 10001:10001
WORKDIR /home/seqcast
VOLUME ["/artifacts"]
ENTRYPOINT ["seqcast-train"]

# ---- runtime: the service (default target) ----------------------------------------------
FROM base AS runtime
ARG VARIANT
LABEL org.opencontainers.image.title="seqcast" \
      org.opencontainers.image.description="Real-time next-behavior prediction service (${VARIANT})"
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels -r /wheels/requirements.txt \
    && pip install --no-index --no-deps /wheels/seqcast-*.whl
RUN groupadd --system --gid 10001 seqcast \
    && useradd --system --uid 10001 --gid seqcast --home-dir /home/seqcast --create-home seqcast \
    && mkdir -p /artifacts /var/lib/seqcast /tmp/prometheus \
    && chown seqcast:seqcast /artifacts /var/lib/seqcast /tmp/prometheus
ENV SEQCAST_ENV=production \
    SEQCAST_ARTIFACT_DIR=/artifacts/current \
    SEQCAST_DATA_DIR=/var/lib/seqcast
USER 10001:10001
WORKDIR /home/seqcast
VOLUME ["/artifacts"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["seqcast"]
CMD ["serve", "--artifact", "/artifacts/current", "--host", "0.0.0.0", "--port", "8000"]
