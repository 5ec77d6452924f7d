"""Generated protobuf and gRPC modules of dbpool.v1 (see scripts/gen_stubs.py)."""
