#!/usr/bin/env python3
"""A WebSocket client nobody here wrote: Python's `websockets` package speaking the
seed's JSON envelope to an easyraft node.

It sends good envelopes and checks the `Ack` replies, refused handshakes (401, 403,
400, 404), every kind of bad input (each must get an `Error` reply with the right
code, or a clean close with the right close code), and checks after each that the
node still serves a connection that behaves. Run by
`tests/t20_python_client_speaks_json_and_survives_bad_input.rs`; usage:

    python3 ws_client.py --addr 127.0.0.1:PORT --token TOKEN --node node1 \
        --peer node2 --cluster CLUSTER --max-bytes N --term T

Every bad message carries a term of 1000 or more: the Rust test checks afterwards
that the node's term is still T, so none of them reached the core.
Exits 0 when every check passed; prints what failed otherwise.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

try:
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect
except ImportError:  # pragma: no cover - the Rust test checks this first
    sys.exit("the `websockets` package is missing: pip install websockets")

TIMEOUT = 10.0
BAD_TERM = 1000

args = None
passed = 0
failures = []


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
        print(f"FAILED: {what}", flush=True)


def url(query=""):
    return f"ws://{args.addr}/raft/{query}"


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


def open_ws(headers=None, query=""):
    return connect(
        url(query),
        additional_headers=headers if headers is not None else bearer(args.token),
        compression=None,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        max_size=None,
    )


def envelope(kind, payload, message_id, target=None):
    return json.dumps(
        {
            "messageType": kind,
            "targetNodeId": target or args.node,
            "payload": payload,
            "messageId": message_id,
        }
    )


def vote(term, message_id):
    return envelope(
        "RequestVote",
        {
            "from": args.peer,
            "term": term,
            "pre_vote": False,
            "last_log_index": 0,
            "last_log_term": 0,
            "leadership_transfer": False,
        },
        message_id,
    )


def heartbeat(term, message_id, target=None):
    return envelope(
        "Heartbeat",
        {"from": args.peer, "term": term, "commit": 0, "read_round": 0},
        message_id,
        target,
    )


def reply(ws, what):
    try:
        text = ws.recv(timeout=TIMEOUT)
    except TimeoutError:
        check(False, f"{what}: no reply within {TIMEOUT}s")
        return None
    except ConnectionClosed as e:
        check(False, f"{what}: connection closed instead of a reply ({e})")
        return None
    check(isinstance(text, str), f"{what}: the reply is a text frame")
    try:
        return json.loads(text)
    except ValueError:
        check(False, f"{what}: the reply is not JSON: {text!r}")
        return None


def expect_ack(ws, frame, message_id, what):
    ws.send(frame)
    r = reply(ws, what)
    check(
        r == {"messageType": "Ack", "messageId": message_id},
        f"{what}: a well-formed Ack naming {message_id!r}, got {r!r}",
    )


def expect_error(ws, frame, code, what, message_id=None):
    ws.send(frame)
    r = reply(ws, what)
    if r is None:
        return
    err = r.get("error") if isinstance(r, dict) else None
    check(r.get("messageType") == "Error", f"{what}: messageType Error, got {r!r}")
    check(isinstance(err, dict) and err.get("code") == code, f"{what}: code {code}, got {r!r}")
    check(
        isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"] != "",
        f"{what}: a readable error message, got {r!r}",
    )
    check(r.get("messageId") == message_id, f"{what}: messageId {message_id!r} echoed, got {r!r}")


def expect_close(frame, close_code, what, text=None):
    """Sends `frame` on a fresh connection; the node must close it with `close_code`."""
    ws = open_ws()
    try:
        if text is None:
            ws.send(frame)
        else:
            ws.send(frame, text=text)
        extra = ws.recv(timeout=TIMEOUT)
        check(False, f"{what}: expected a close {close_code}, got a frame {extra!r}")
    except TimeoutError:
        check(False, f"{what}: expected a close {close_code}, the connection stayed open")
    except ConnectionClosed as e:
        rcvd = e.rcvd
        check(rcvd is not None, f"{what}: the node sent a close frame ({e})")
        check(
            rcvd is not None and rcvd.code == close_code,
            f"{what}: close code {close_code}, got {rcvd.code if rcvd else None}",
        )
        check(
            rcvd is not None and rcvd.reason != "",
            f"{what}: the close frame gives a reason",
        )
    finally:
        ws.close()


def expect_refused(status, what, headers=None, query="", path=None):
    target = f"ws://{args.addr}{path}" if path else url(query)
    try:
        with connect(
            target,
            additional_headers=headers if headers is not None else bearer(args.token),
            open_timeout=TIMEOUT,
        ):
            check(False, f"{what}: the handshake was accepted")
    except InvalidStatus as e:
        got = e.response.status_code
        check(got == status, f"{what}: HTTP {status}, got {got}")


def http_get(path):
    try:
        with urllib.request.urlopen(f"http://{args.addr}{path}", timeout=TIMEOUT) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def still_serving(keeper, n):
    expect_ack(keeper, heartbeat(args.term, f"keep-{n}"), f"keep-{n}", f"keeper after case {n}")


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--max-bytes", type=int, required=True)
    p.add_argument("--term", type=int, required=True)
    args = p.parse_args()
    t = args.term

    # Handshakes that must be refused before any frame is read.
    expect_refused(401, "no token", headers=[])
    expect_refused(401, "wrong bearer token", headers=bearer("wrong"))
    expect_refused(401, "wrong ?token=", headers=[], query="?token=wrong")
    expect_refused(403, "another cluster", headers=bearer(args.token) + [("x-easyraft-cluster", "other")])
    expect_refused(400, "unsupported protocol", headers=bearer(args.token) + [("x-easyraft-protocol", "99")])
    expect_refused(404, "not the Raft path", path="/raft/elsewhere")

    # A good conversation: a vote request from a fake node2, then its heartbeat.
    keeper = open_ws(
        headers=bearer(args.token) + [("x-easyraft-cluster", args.cluster), ("x-easyraft-protocol", "1")]
    )
    expect_ack(keeper, vote(t, "vote-1"), "vote-1", "RequestVote")
    expect_ack(keeper, heartbeat(t, "hb-1"), "hb-1", "Heartbeat")

    # Bad input on one connection (token in the query this time): each gets an Error
    # reply and the connection stays usable.
    probe = open_ws(headers=[], query=f"?token={args.token}")
    hb = {"from": args.peer, "term": BAD_TERM, "commit": 0, "read_round": 0}
    rv = {"from": args.peer, "term": BAD_TERM, "pre_vote": False, "last_log_index": 0,
          "last_log_term": 0, "leadership_transfer": False}

    def without(d, key):
        return {k: v for k, v in d.items() if k != key}

    def raw(obj):
        return json.dumps(obj)

    cases = [
        ("not JSON", "this is not json {", "BadJson", None),
        ("empty text", "", "BadJson", None),
        ("a JSON array", "[1, 2, 3]", "BadJson", None),
        ("a JSON number", "42", "BadJson", None),
        ("JSON nested too deep", "[" * 5000 + "]" * 5000, "BadJson", None),
        ("unknown messageType", envelope("Gossip", hb, "m1"), "UnknownMessageType", "m1"),
        ("missing messageType", raw({"targetNodeId": args.node, "payload": hb, "messageId": "m2"}),
         "UnknownMessageType", "m2"),
        ("messageType not a string", raw({"messageType": 7, "targetNodeId": args.node, "payload": hb,
                                          "messageId": "m3"}), "UnknownMessageType", "m3"),
        ("term is a string", envelope("Heartbeat", dict(hb, term="1000"), "m4"), "BadPayload", "m4"),
        ("negative commit", envelope("Heartbeat", dict(hb, commit=-1), "m5"), "BadPayload", "m5"),
        ("pre_vote is a string", envelope("RequestVote", dict(rv, pre_vote="yes"), "m6"), "BadPayload", "m6"),
        ("from is a number", envelope("Heartbeat", dict(hb, **{"from": 42}), "m7"), "BadPayload", "m7"),
        ("payload is an array", raw({"messageType": "Heartbeat", "targetNodeId": args.node, "payload": [1],
                                     "messageId": "m8"}), "BadPayload", "m8"),
        ("targetNodeId is a number", raw({"messageType": "Heartbeat", "targetNodeId": 1, "payload": hb,
                                          "messageId": "m9"}), "BadPayload", "m9"),
        ("missing targetNodeId", raw({"messageType": "Heartbeat", "payload": hb, "messageId": "m10"}),
         "BadPayload", "m10"),
        ("missing payload", raw({"messageType": "Heartbeat", "targetNodeId": args.node, "messageId": "m11"}),
         "BadPayload", "m11"),
        ("missing term", envelope("Heartbeat", without(hb, "term"), "m12"), "BadPayload", "m12"),
        ("missing from", envelope("Heartbeat", without(hb, "from"), "m13"), "BadPayload", "m13"),
        ("missing last_log_index", envelope("RequestVote", without(rv, "last_log_index"), "m14"),
         "BadPayload", "m14"),
        ("entries of the wrong shape", envelope("AppendEntries", {"from": args.peer, "term": BAD_TERM,
                                                                  "prev_log_index": 0, "prev_log_term": 0,
                                                                  "entries": "lots", "commit": 0}, "m15"),
         "BadPayload", "m15"),
        ("another node's message", heartbeat(BAD_TERM, "m16", target="node9"), "WrongTarget", "m16"),
        ("a numeric messageId", raw({"messageType": "Nope", "messageId": 17}), "UnknownMessageType", "17"),
    ]
    for i, (what, frame, code, mid) in enumerate(cases):
        expect_error(probe, frame, code, what, mid)
        if i % 5 == 4:
            still_serving(keeper, i)
    expect_ack(probe, heartbeat(t, "probe-ok"), "probe-ok", "a good envelope after all that, same connection")
    probe.close()
    still_serving(keeper, 100)

    # Input the node answers by closing the connection, with the right close code.
    big = "x" * (args.max_bytes + 1024)
    expect_close(heartbeat(BAD_TERM, big), 1009, "an oversized text frame")
    still_serving(keeper, 101)
    expect_close(b"\x01" * (args.max_bytes + 1024), 1009, "an oversized binary frame")
    still_serving(keeper, 102)
    expect_close(b"\xff\xff\xff\xff\xff\xff\xff\xff\x00garbage", 1007, "a binary frame that does not decode")
    still_serving(keeper, 103)
    expect_close(b"\x7b\x22\xff\xfe\x22\x7d", 1007, "a text frame that is not UTF-8", text=True)
    still_serving(keeper, 104)

    # Plain HTTP on the Raft port is refused with a short 404 (health and status are the
    # API server's, on another port), and a new connection behaves after it.
    for path in ("/health", "/status", "/nowhere"):
        status, _ = http_get(path)
        check(status == 404, f"GET {path} on the Raft port is 404, got {status}")
    fresh = open_ws()
    expect_ack(fresh, vote(t, "vote-2"), "vote-2", "RequestVote on a new connection")
    fresh.close()
    keeper.close()

    print(f"python client: {passed} checks ok, {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
