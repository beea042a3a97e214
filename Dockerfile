# A container image of `realtimer serve` (docs/guide/serve.md):
#
#   docker build -t realtimer .
#   docker run --network host -e REALTIMER_LISTEN=0.0.0.0:8080 realtimer
#
# Host networking: TURN relays take ports from a range (49152-65535 by
# default) and ICE needs the addresses peers really reach, which port
# mapping hides. Without it, publish 8080/tcp, 3478/udp, 3478/tcp and the
# relay range, and give --relay-ip the host's public address.

FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      pkg-config libssl-dev libopus-dev libvpx-dev g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p realtimer-cli --bin realtimer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libssl3 libopus0 libvpx7 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home realtimer
COPY --from=build /src/target/release/realtimer /usr/local/bin/realtimer
USER realtimer
# HTTP (web app, signaling, /metrics), STUN/TURN over UDP and TCP, TURN over TLS.
EXPOSE 8080/tcp 3478/udp 3478/tcp 5349/tcp
ENV REALTIMER_LISTEN=0.0.0.0:8080
ENTRYPOINT ["realtimer"]
CMD ["serve"]
