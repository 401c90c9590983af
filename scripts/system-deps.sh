#!/usr/bin/env bash
# Installs the system packages building braid needs, if they are missing: librdkafka (built from
# source by rdkafka-sys) links the system OpenSSL for SASL_SSL/TLS consumerProperties; its
# headers come from Debian's libssl-dev. Sourced by scripts/test.sh and scripts/quickstart.sh.
if ! pkg-config --exists openssl 2>/dev/null; then
  sudo_if_needed=""
  [ "$(id -u)" -ne 0 ] && sudo_if_needed="sudo"
  $sudo_if_needed apt-get update -qq && $sudo_if_needed apt-get install -y -qq libssl-dev pkg-config
fi
