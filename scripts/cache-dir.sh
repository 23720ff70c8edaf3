#!/usr/bin/env bash
# Prints the directory where built tools (Vault, ocb, helm, linters) are
# cached between runs: the repo's ignored .cache/, so CI keeps it with the
# checkout. VAULTLIGHTSTEP_CACHE puts it elsewhere (one cache for several
# clones, say). internal/vaulttest.BinaryPath follows the same rule.
echo "${VAULTLIGHTSTEP_CACHE:-$(cd "$(dirname "$0")/.." && pwd)/.cache}"
