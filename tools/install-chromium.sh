#!/usr/bin/env bash
# Installs what the web page's browser test (ServePageBrowserTest) needs: Debian's chromium and chromium-driver, and
# a CJK font so Chinese renders with real glyphs. Idempotent: does nothing when they are present. Needs root (or
# sudo) and the Debian package archive; when it cannot install, it prints one line and exits non-zero.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-chromium: need ${need[*]} for the browser test; run as root or install them: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
  echo "install-chromium: apt-get install ${need[*]} failed ($(tail -1 "$log")); install them by hand for the browser test" >&2
  exit 1
fi
rm -f "$log"
