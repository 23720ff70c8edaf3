#!/usr/bin/env bash
# Prints the directory where built tools (Vault, ocb, the collector's builds)
# are cached between runs. It lives outside the repo so a fresh clone reuses it.
echo "${VAULTLIGHTSTEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vaultlightstep}"
