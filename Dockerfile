# A container image of `realtimer serve` (docs/guide/serve.md):
#
#   docker build -t realtimer .
#   docker run --network host -e REALTIMER_LISTEN=0.0.0.0:8080 realtimer
#
# Host networking: TURN relays take ports from a range (49152-65535 by
# default) and ICE needs the addresses peers really reach, which port
# mapping hides. Without it, publish 8080/tcp, 3478/udp, 3478/tcp and the
# relay range, and give --relay-ip the host's public address.

# The base images: Docker Hub's by default; scripts/container-test builds
# them from Debian's archive (debootstrap) where Docker Hub is out of reach.
ARG BUILD_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
# Every library the default features build against: OpenSSL (DTLS,
# SRTP), libopus and libvpx (codecs), WebRTC's audio processing (echo
# cancellation; without it the build leaves it out with a warning), a C++
# compiler (OpenH264 and the audio processing shim).
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates pkg-config libssl-dev libopus-dev libvpx-dev \
      libwebrtc-audio-processing-dev g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The build must have found the audio processing library.
RUN cargo build --release --locked -p realtimer-cli --bin realtimer 2>/tmp/build.log \
      || { cat /tmp/build.log; exit 1; }; \
    cat /tmp/build.log; ! grep -q "audio processing left out" /tmp/build.log

FROM ${RUNTIME_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libssl3 libopus0 libvpx7 libwebrtc-audio-processing1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home realtimer
COPY --from=build /src/target/release/realtimer /usr/local/bin/realtimer
USER realtimer
# HTTP (web app, signaling, /metrics), STUN/TURN over UDP and TCP, TURN over TLS.
EXPOSE 8080/tcp 3478/udp 3478/tcp 5349/tcp
ENV REALTIMER_LISTEN=0.0.0.0:8080
ENTRYPOINT ["realtimer"]
CMD ["serve"]
