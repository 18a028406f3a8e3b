# The api-simulator image: `docker build -t fake-api .` then `docker run -p 9123:9123 fake-api`.
# Plain Dockerfile syntax only (no BuildKit mounts or heredocs) so the classic builder builds it too.
# Configuration is environment variables only (SIMULATOR_*, ELID_*, APIM_*), as the README documents.
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# The dependencies are exactly requirements.lock's, each checked against its hash (`make lock` re-resolves
# them), so an image rebuilt later runs what was tested, never whatever is newest. They get their own
# layer: a source change rebuilds only the layers below.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install -q --no-deps --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY simulator ./simulator
COPY plugins ./plugins
# pip is not needed at run time. The image is immutable, so bytecode is compiled once here and never checked
# against its source: nothing needs to write at run time (read-only root filesystem).
# In pip's place, `pip`, `pip3` and `pip3.N` stop with one line: a derived image's `RUN pip install` would
# otherwise reach the base image's own pip (if any), whose packages this virtualenv never sees. Plugins go in
# with the derived image of examples/spiky/Dockerfile (docs/docker.md, "Your own plugins in the image").
RUN /opt/venv/bin/pip install -q --no-deps . \
    && /opt/venv/bin/pip uninstall -q -y pip setuptools \
    && printf '%s\n' '#!/bin/sh' \
        'echo "pip: this image has no pip, on purpose: packages installed here would not be found by the simulator. Add plugins with a derived image, the recipe in examples/spiky/Dockerfile (docs/docker.md: Your own plugins in the image)." >&2' \
        'exit 1' >/opt/venv/bin/pip \
    && chmod 755 /opt/venv/bin/pip \
    && ln -s pip /opt/venv/bin/pip3 \
    && ln -s pip "/opt/venv/bin/$(/opt/venv/bin/python -c 'import sys; print("pip%d.%d" % sys.version_info[:2])')" \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} + \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin simulator
# The official python images ship the standard library without bytecode: under a read-only root filesystem it
# would be compiled in memory at every start, which doubles the start-up time.
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash -x /site-packages/ \
        "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"
COPY --from=builder /opt/venv /opt/venv
# Numeric, so platforms that check "runs as non-root" (Kubernetes runAsNonRoot) can verify it.
USER 10001:10001
EXPOSE 9123
# Only the interpreter in the image, no curl: the same probe the ECS task definition runs.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('SIMULATOR_PORT', '9123'), timeout=2)"]
# Exec form: the server is PID 1 and receives SIGTERM itself; uvicorn then stops accepting, lets in-flight
# (delayed) requests finish within SIMULATOR_GRACEFUL_TIMEOUT (25 s, inside Fargate's 30 s) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["simulator"]
CMD ["serve"]
