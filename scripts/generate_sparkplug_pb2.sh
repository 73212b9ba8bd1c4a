#!/usr/bin/env bash
# Regenerates the Sparkplug B payload module from the official schema (Eclipse Tahu,
# sparkplug_b/sparkplug_b.proto, shipped verbatim in agent/sinks/sparkplug_b/). The generated
# sparkplug_b_pb2.py/.pyi are committed: a gateway needs only the protobuf runtime, never protoc.
# Run after changing the grpcio-tools pin (it bundles protoc) or the .proto:
#   .venv/bin/pip install -e '.[dev]' && bash scripts/generate_sparkplug_pb2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
OUT=agent/sinks/sparkplug_b
"$PYTHON" -m grpc_tools.protoc --proto_path="$OUT" --python_out="$OUT" --pyi_out="$OUT" "$OUT/sparkplug_b.proto"
echo "generated $OUT/sparkplug_b_pb2.py and .pyi with $("$PYTHON" -m grpc_tools.protoc --version)"
# The tests' independent decoder: the same official schema through another protobuf library
# (betterproto2, pure Python), so a fault in how the agent encodes cannot hide in how it is decoded.
DECODER=tests/sparkplug_decoder
rm -rf "$DECODER" && mkdir -p "$DECODER"
PATH="$(dirname "$PYTHON"):$PATH" "$PYTHON" -m grpc_tools.protoc --proto_path="$OUT" \
    --python_betterproto2_out="$DECODER" "$OUT/sparkplug_b.proto"
echo "generated $DECODER (betterproto2)"
