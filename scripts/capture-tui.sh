#!/usr/bin/env bash
# Runs `npm run demo` in a real pseudo-terminal (tmux, 100x40) and keeps a text capture of the pane
# every 0.25 s, so the TUI can be looked at frame by frame (the README's capture comes from it).
# Usage: bash scripts/capture-tui.sh [OUT_DIR]   (needs tmux; the demo needs Docker for the switch)
set -euo pipefail
out=${1:-/tmp/nuwax-tui-frames}
session=nuwax-capture-$$
rm -rf "$out" && mkdir -p "$out"
cd "$(dirname "$0")/.."
npm run build >/dev/null
tmux new-session -d -s "$session" -x 100 -y 40 "node dist/scripts/demo.js; echo DEMO-EXIT-\$?; sleep 30"
trap 'tmux kill-session -t "$session" 2>/dev/null || true' EXIT
frame=0
while sleep 0.25; do
  frame=$((frame + 1))
  tmux capture-pane -p -t "$session" >"$out/$(printf '%05d' "$frame").txt" 2>/dev/null || break
  if grep -q 'DEMO-EXIT-' "$out/$(printf '%05d' "$frame").txt"; then break; fi
  if [ "$frame" -gt 4000 ]; then echo "capture-tui: the demo did not finish in 1000 s" >&2; exit 1; fi
done
tmux capture-pane -p -S - -t "$session" >"$out/scrollback.txt"
echo "capture-tui: $frame frames in $out (whole scrollback in $out/scrollback.txt)"
grep -h 'DEMO-EXIT-' "$out/scrollback.txt"
