#!/usr/bin/env bash
# Build llama.cpp's own server (`llama-server`) from the llama.cpp sources vendored in the pinned llama-cpp-python
# sdist, so the binary and the in-process engine run the same llama.cpp. Cached outside the repository (never
# committed) under a directory named by version and CMake flags; a second run with both unchanged does nothing.
#
#   deploy/local/build_llama_server.sh VERSION "CMAKE_ARGS" [SDIST_DIR]     (make llama-server)
#
# Prints the binary's path on the last line. About 8 minutes on 2 cores: only the llama-server target is built,
# without the web UI (its assets are built with npm or downloaded, neither possible offline) and without OpenSSL
# (it listens on loopback, or inside a pod, behind the inference service).
set -euo pipefail
VERSION="${1:?llama-cpp-python version}"
CMAKE_ARGS="${2-}"
SDIST_DIR="${3:-$(dirname "$0")/../../.cache/llama-cpp-sdist}"
FLAGS_HASH=$(echo "$CMAKE_ARGS" | sha256sum | cut -c1-12)
DEST="${LLAMA_SERVER_CACHE:-$HOME/.cache/jenkins-assistant}/llama-server-$VERSION-$FLAGS_HASH"
if [ -x "$DEST/llama-server" ]; then
  echo "$DEST/llama-server"
  exit 0
fi

SDIST="$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then  # the package registry is the only reachable source of the llama.cpp tree
  mkdir -p "$SDIST_DIR"
  python3 -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$SDIST_DIR"
fi
command -v cmake >/dev/null || { echo "cmake is needed to build llama-server (apt-get install cmake)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$SDIST" -C "$WORK" --strip-components=3 "llama_cpp_python-$VERSION/vendor/llama.cpp"
# shellcheck disable=SC2086  # CMAKE_ARGS holds several flags
cmake -S "$WORK" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release $CMAKE_ARGS \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >"$WORK/configure.log" 2>&1 \
  || { tail -30 "$WORK/configure.log" >&2; exit 1; }
cmake --build "$WORK/build" --target llama-server -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; exit 1; }
# Into place by rename, so an interrupted build never leaves a half-written binary behind.
mkdir -p "$(dirname "$DEST")"
STAGING=$(mktemp -d "$(dirname "$DEST")/.llama-server.XXXXXX")
cp "$WORK/build/bin/llama-server" "$STAGING/llama-server"
cp "$WORK/LICENSE" "$STAGING/LICENSE"
rm -rf "$DEST"
mv "$STAGING" "$DEST"
echo "$DEST/llama-server"
