#!/usr/bin/env bash
# drydock's main job on its embedded defaults, the way ACR's continuous
# patching lab walks a user through it: build drydock, start `drydock serve`
# on 127.0.0.1:5000 (registry, API, scheduler, dashboard; data in .drydock/),
# build a real Debian 12 image from Debian's archive (the release as
# published, so it lacks the security updates issued since), import it,
# scan it, create a continuous-patching workflow from
# examples/continuouspatching.json with --run-immediately, wait for its runs,
# and show the new -1 tag and the before/after scan totals. Safe to run
# again: it reuses the server, the image and the workflow (a second run
# finds nothing new to fix and says so).
set -euo pipefail
cd "$(dirname "$0")/.."

data_dir=${DRYDOCK_DATA_DIR:-$PWD/.drydock}
listen=${DRYDOCK_LISTEN:-127.0.0.1:5000}
export DRYDOCK_URL="http://$listen"

bash scripts/install-test-deps.sh
cargo build --release --locked -p drydock
drydock=$PWD/target/release/drydock
mkdir -p "$data_dir"

if "$drydock" repo list >/dev/null 2>&1; then
  echo "drydock serve is already answering on $listen"
else
  nohup "$drydock" serve --listen "$listen" --data-dir "$data_dir" >"$data_dir/serve.log" 2>&1 &
  echo $! >"$data_dir/serve.pid"
  for _ in $(seq 1 50); do
    "$drydock" repo list >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$drydock" repo list >/dev/null || { cat "$data_dir/serve.log" >&2; exit 1; }
  echo "Started drydock serve on $listen (pid $(cat "$data_dir/serve.pid"), log $data_dir/serve.log)"
fi

images=$data_dir/images/debian
if ! grep -q '"org.opencontainers.image.ref.name":"12"' "$images/index.json" 2>/dev/null; then
  bash scripts/build-debian-image.sh bookworm "$images" 12
fi

echo
echo "\$ drydock import oci:$images:12 $listen/debian:12"
"$drydock" import "oci:$images:12" "$listen/debian:12"
echo
echo "\$ drydock repo list"
"$drydock" repo list
echo
echo "\$ drydock repo tags debian"
"$drydock" repo tags debian
echo
echo "\$ drydock scan $listen/debian:12 --ignore-unfixed"
"$drydock" scan "$listen/debian:12" --ignore-unfixed --data-dir "$data_dir" | tail -n 1

config=examples/continuouspatching.json
echo
echo "\$ cat $config"
cat "$config"
echo
if "$drydock" workflow show >/dev/null 2>&1; then
  echo "\$ drydock workflow update --config $config --schedule 1d --run-immediately"
  "$drydock" workflow update --config "$config" --schedule 1d --run-immediately
else
  echo "\$ drydock workflow create --config $config --schedule 1d --dry-run"
  "$drydock" workflow create --config "$config" --schedule 1d --dry-run
  echo
  echo "\$ drydock workflow create --config $config --schedule 1d --run-immediately"
  "$drydock" workflow create --config "$config" --schedule 1d --run-immediately
fi

echo
echo "Waiting for the runs (trigger, scan, patch)..."
for _ in $(seq 1 600); do
  active=$("$drydock" task list-runs --output json | python3 -c 'import json,sys; print(sum(r["status"] in ("Queued","Running") for r in json.load(sys.stdin)))')
  [[ $active == 0 ]] && break
  sleep 1
done
echo
echo "\$ drydock task list-runs"
"$drydock" task list-runs
echo
echo "\$ drydock workflow list"
"$drydock" workflow list
echo
echo "\$ drydock repo tags debian"
"$drydock" repo tags debian
latest=$("$drydock" repo tags debian | python3 -c 'import json,re,sys; t=[x for x in json.load(sys.stdin) if re.fullmatch(r"12-[0-9]{1,3}", x)]; print(max(t, key=lambda x: int(x[3:])) if t else "")')
if [[ -n $latest ]]; then
  echo
  echo "Before and after:"
  echo "\$ drydock scan $listen/debian:12 --ignore-unfixed"
  "$drydock" scan "$listen/debian:12" --ignore-unfixed --data-dir "$data_dir" | tail -n 1
  echo "\$ drydock scan $listen/debian:$latest --ignore-unfixed"
  "$drydock" scan "$listen/debian:$latest" --ignore-unfixed --data-dir "$data_dir" | tail -n 1
fi
echo
echo "Dashboard: http://$listen/   The server keeps running; stop it with: kill \$(cat $data_dir/serve.pid)"
