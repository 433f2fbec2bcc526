#!/usr/bin/env bash
# Installs what clrdiag needs to build and test, idempotently: Debian packages that are
# missing, and the reference dotnet-dump (a test oracle and the benchmark baseline).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config make
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libyaml-cpp-dev libgtest-dev
  libcli11-dev nlohmann-json3-dev libssl-dev
  libcivetweb-dev libcurl4-openssl-dev libcapstone-dev
  util-linux bsdutils procps binutils gdb
  clang libclang-rt-14-dev libedit-dev tmux
  systemd
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The reference tool, pinned, for conformance tests and benchmarks. Only when asked:
# `make run` does not need it.
if [ "${WITH_REFERENCE:-0}" = "1" ]; then
  DD_VERSION=10.0.750501
  TOOLS="${CLRDIAG_TOOLS_DIR:-$HOME/.dotnet/tools}"
  if ! "$TOOLS/dotnet-dump" --version 2>/dev/null | grep -q "^${DD_VERSION%.*}"; then
    if command -v dotnet >/dev/null; then
      dotnet tool update --tool-path "$TOOLS" dotnet-dump --version "$DD_VERSION" >/dev/null ||
        dotnet tool install --tool-path "$TOOLS" dotnet-dump --version "$DD_VERSION" >/dev/null ||
        echo "install-deps: warning: could not install dotnet-dump $DD_VERSION" >&2
    fi
  fi
fi
# The S3 egress tests (egress_moto_test) run a local S3, moto_server (Python, not in Debian 12).
# The machine image has it under pyenv; elsewhere: pip install 'moto[server]' (in a venv), or
# point CLRDIAG_MOTO_SERVER at it. Without it those tests fail, saying so.
if ! command -v moto_server >/dev/null && [ ! -x /root/.pyenv/shims/moto_server ] &&
  [ -z "${CLRDIAG_MOTO_SERVER:-}" ]; then
  echo "install-deps: warning: moto_server not found; egress_moto_test needs it" \
    "(pip install 'moto[server]', or set CLRDIAG_MOTO_SERVER)" >&2
fi
echo "install-deps: ok"
