#!/usr/bin/env bash
# A client nobody here wrote: curl talks to a real 3-process kv cluster
# (`easyraft-server`, built by `cargo test --workspace`), on the nodes' client ports.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
bin=${CARGO_TARGET_DIR:-target}/debug/easyraft-server
[ -x "$bin" ] || cargo build -q -p easyraft-server
dir=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ports=(0 0 0)
peer_ports=(0 0 0)
for i in 0 1 2; do ports[$i]=$(free_port); peer_ports[$i]=$(free_port); done
initial="node1=127.0.0.1:${peer_ports[0]},node2=127.0.0.1:${peer_ports[1]},node3=127.0.0.1:${peer_ports[2]}"
echo ci-token >"$dir/admin.token"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
for i in 1 2 3; do
  RUST_LOG=warn "$bin" --id node$i --data-dir "$dir/node$i" --initial-cluster "$initial" \
    --listen-peer "127.0.0.1:${peer_ports[$((i-1))]}" --listen-client "127.0.0.1:${ports[$((i-1))]}" \
    --admin-token-file "$dir/admin.token" >"$dir/node$i.log" 2>&1 &
  pids+=($!)
done
rpc() { # port method params
  curl -s --max-time 5 -H 'Authorization: Bearer ci-token' -H 'Content-Type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "http://127.0.0.1:$1/" || true
}
# Put through whichever node is leader (followers answer -32020 with a hint).
ok=""
for attempt in $(seq 1 100); do
  for p in "${ports[@]}"; do
    out=$(rpc "$p" kv_put '{"key":"greeting","value":"hello"}')
    if echo "$out" | grep -q '"ok":true'; then ok=$p; break 2; fi
  done
  sleep 0.1
done
[ -n "$ok" ] || { echo "kv_put never succeeded"; cat "$dir"/node*.log; exit 1; }
echo "kv_put via node on port $ok: $out"
for p in "${ports[@]}"; do
  out=$(rpc "$p" kv_get '{"key":"greeting"}')
  echo "kv_get on port $p: $out"
  echo "$out" | grep -q '"value":"hello"' || { echo "a node did not read the write"; exit 1; }
done
out=$(rpc "${ports[0]}" raft_appendEntries '{"from":"x","term":"not a number"}')
echo "raft_appendEntries on the client port: $out"
echo "$out" | grep -q '"code":-32601' || { echo "expected method not found (-32601): Raft traffic is on the peer port"; exit 1; }
out=$(rpc "${ports[0]}" admin_members '{}')
echo "admin_members with the admin token: $out"
echo "$out" | grep -q '"members"' || { echo "expected the members"; exit 1; }
out=$(curl -s -o /dev/null -w '%{http_code}' -d '{"jsonrpc":"2.0","id":1,"method":"admin_members","params":{}}' "http://127.0.0.1:${ports[0]}/")
[ "$out" = 401 ] || { echo "expected 401 without the admin token, got $out"; exit 1; }
for path in health status metrics; do
  out=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[0]}/$path")
  echo "GET /$path: $out"
  [ "$out" = 200 ] || { echo "expected 200 for /$path"; exit 1; }
done
raw() { # port body -> "status body"
  curl -s --max-time 5 -w ' %{http_code}' -H 'Authorization: Bearer ci-token' -H 'Content-Type: application/json' \
    -d "$2" "http://127.0.0.1:$1/" || true
}
# Malformed requests: one JSON-RPC error each, all with HTTP 200.
for body in '{' 'not json' '' '[' '{"jsonrpc":"2.0"'; do
  out=$(raw "${ports[0]}" "$body")
  echo "body '$body': $out"
  echo "$out" | grep -q '"code":-32700.* 200$' || { echo "expected a -32700 parse error with status 200"; exit 1; }
done
out=$(raw "${ports[0]}" '{"jsonrpc":"2.0","id":{"a":1},"method":"kv_get","params":{"key":"greeting"}}')
echo "an object as id: $out"
echo "$out" | grep -q '"code":-32600.* 200$' || { echo "expected -32600 for an object id"; exit 1; }
for limit in -1 0 18446744073709551616 1.5 10001; do
  out=$(rpc "${ports[0]}" kv_scan "{\"prefix\":\"g\",\"limit\":$limit}")
  echo "kv_scan limit $limit: $out"
  echo "$out" | grep -q '"code":-32602' || { echo "expected -32602 for limit $limit"; exit 1; }
done
out=$(rpc "$ok" kv_scan '{"prefix":"g","limit":1}')
echo "$out" | grep -q '"key":"greeting"' || { echo "kv_scan with a good limit failed: $out"; exit 1; }
echo "curl checks passed"
