#!/usr/bin/env bash
# Makes sure the local services (PostgreSQL, Redis) run and the tools (uv, grpcurl) are
# installed. Safe to run any number of times; silent when nothing had to be done.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_services
ensure_tools
