# syntax=docker/dockerfile:1
# The Tollgate image with Python and a model repository's requirements, for the three
# services that run the user's code: the trainer (`algorithm: {kind: command}`), the gate
# (`tests.gate`) and the promoter (`tests.integration`). Build from the model repository
# (or this one) with the Tollgate image already built (`make images`):
#   docker build -f deploy/trainer-python.Dockerfile \
#     --build-arg TOLLGATE_IMAGE=ghcr.io/tollgate-dev/tollgate:dev \
#     --build-arg REQUIREMENTS=examples/sklearn/requirements.txt -t my-trainer .
# and set it as those Deployments' image. Commands run with this image's PATH, so
# `python3 train.py` and `pytest` are the ones installed here.

ARG TOLLGATE_IMAGE=ghcr.io/tollgate-dev/tollgate:dev
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${TOLLGATE_IMAGE} AS tollgate

FROM ${PYTHON_IMAGE}
ARG REQUIREMENTS=requirements.txt
COPY ${REQUIREMENTS} /tmp/requirements.txt
RUN pip install --no-cache-dir --only-binary=:all: -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin tollgate
COPY --from=tollgate /usr/local/bin/ /usr/local/bin/
COPY --from=tollgate /usr/local/lib/libonnxruntime.so* /usr/local/lib/
USER 65532:65532
EXPOSE 8080
ENV TOLLGATE_HEALTH_ADDR=0.0.0.0:8080 \
    TOLLGATE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["--help"]
