#!/usr/bin/env bash
# drydock's main job on its embedded defaults: build drydock, start the
# embedded registry on 127.0.0.1:5000 (data in .drydock/), build a real
# Debian 12 image from Debian's archive, import it, show what the registry
# holds, and scan the image for fixable vulnerabilities against Debian's
# security repository. Safe to run again: it reuses the server and the image.
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
"$drydock" scan "$listen/debian:12" --ignore-unfixed --data-dir "$data_dir"
echo
echo "The registry keeps running; stop it with: kill \$(cat $data_dir/serve.pid)"
