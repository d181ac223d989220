# syntax=docker/dockerfile:1
# The asrforge server on an NVIDIA GPU (compose.yaml runs it with the GPU, the port and a cache volume):
#   docker build -t asrforge .
#   docker run --gpus all -p 8000:8000 -v asrforge-cache:/home/asrforge/.cache asrforge
# Arguments after the image name go to `asrforge serve`: options and Hydra overrides, e.g.
#   docker run --gpus all -p 8000:8000 asrforge --server granian serving.scheduler.max_batch_size=16
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/asrforge \
    PATH=/opt/asrforge/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/asrforge \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin asrforge

WORKDIR /app
COPY . .
# On Linux x86_64 the torch wheel on PyPI is the CUDA build (it brings its own CUDA libraries; the base image gives
# the driver's user-space side). PyAV's wheel bundles FFmpeg, onnxruntime's runs Silero VAD.
RUN pip install . && chown -R asrforge:asrforge /app

USER asrforge
# Converted checkpoints (~/.cache/asrforge) and the Hugging Face hub cache: mount a volume here to keep them.
ENV HF_HOME=/home/asrforge/.cache/huggingface
RUN mkdir -p /home/asrforge/.cache/asrforge /home/asrforge/.cache/huggingface
VOLUME ["/home/asrforge/.cache"]

EXPOSE 8000
# Ready means loaded and warmed up; the first start also converts the weights, hence the long start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]

# Thread pools sized to the container's CPU quota (cgroup cpu.max, e.g. `docker run --cpus 4`), not the host's
# core count, which would oversubscribe a limited container; an OMP_NUM_THREADS/MKL_NUM_THREADS given with -e wins.
ENTRYPOINT ["/bin/sh", "-c", "n=$(python -c 'from asrforge.cpu import cpu_quota; print(cpu_quota())') && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$n} MKL_NUM_THREADS=${MKL_NUM_THREADS:-$n} && exec asrforge serve --host 0.0.0.0 \"$@\"", "asrforge"]
CMD []
