#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from the captured frames in
src/proto/fixtures/ (server_replies.txt and client_requests.txt).

Run from anywhere: `python3 fuzz/seed_corpus.py`. It (re)writes files named `seed-*` under
fuzz/corpus/<target>/ and leaves other files there alone. The selector numbers below must
match the RECORDS tables in fuzz_targets/reply_decoders.rs and fuzz_targets/requests.rs.
"""

import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
FIXTURES = FUZZ.parent / "src" / "proto" / "fixtures"
CORPUS = FUZZ / "corpus"

# reply_decoders selectors (RECORDS in fuzz_targets/reply_decoders.rs).
REPLY_HEADER, CONNECT_RESPONSE, CREATE, CREATE2, STAT_RESPONSE, GET_DATA, GET_ACL = range(7)
GET_CHILDREN, GET_CHILDREN2, ALL_CHILDREN_NUMBER, GET_EPHEMERALS, SYNC, WHO_AM_I = range(7, 13)
CLIENT_INFO, WATCHER_EVENT, ERROR_RESPONSE, SET_WATCHES2 = range(13, 17)
MULTI_HEADER, STAT, ACL, ID, SET_SASL = range(17, 22)

# requests selectors (RECORDS in fuzz_targets/requests.rs).
CONNECT_REQUEST, REQUEST_HEADER, CREATE_REQ, CREATE_TTL_REQ, DELETE_REQ = range(5)
PATH_WATCH_REQ, PATH_REQ, SET_DATA_REQ, SET_ACL_REQ, CHECK_REQ, WATCHES_REQ = range(5, 11)
ADD_WATCH_REQ, AUTH_REQ, SET_WATCHES2_REQ, RECONFIG_REQ, MULTI_REQ = range(11, 16)

WITH_HEADER = 0x80

# The body record of each reply fixture (the frame after its 16-byte ReplyHeader); None for
# frames that are a bare ReplyHeader, "multi" for multi bodies (the multi_results target).
REPLY_BODY = {
    "create": CREATE,
    "create_sequential": CREATE,
    "create2": CREATE2,
    "create_ephemeral": CREATE2,
    "create_ttl": CREATE2,
    "create_container": CREATE2,
    "create_null_data": CREATE2,
    "get_data": GET_DATA,
    "get_data_null": GET_DATA,
    "exists": STAT_RESPONSE,
    "set_data": STAT_RESPONSE,
    "set_acl": STAT_RESPONSE,
    "get_children": GET_CHILDREN,
    "get_children_empty": GET_CHILDREN,
    "get_children2": GET_CHILDREN2,
    "get_acl": GET_ACL,
    "get_acl_read_only": GET_ACL,
    "event_data_changed": WATCHER_EVENT,
    "event_created": WATCHER_EVENT,
    "event_deleted": WATCHER_EVENT,
    "event_children_changed": WATCHER_EVENT,
    "event_recursive_data_changed": WATCHER_EVENT,
    "get_all_children_number": ALL_CHILDREN_NUMBER,
    "get_ephemerals": GET_EPHEMERALS,
    "sync": SYNC,
    "add_watch": ERROR_RESPONSE,
    "who_am_i_anonymous": WHO_AM_I,
    "who_am_i": WHO_AM_I,
    "multi_ok": "multi",
    "multi_fail": "multi",
    "multi_read": "multi",
}

# The request record for each op code of a RequestHeader.
REQUEST_BODY = {
    1: CREATE_REQ, 15: CREATE_REQ, 19: CREATE_REQ, 21: CREATE_TTL_REQ,
    2: DELETE_REQ, 20: DELETE_REQ,
    3: PATH_WATCH_REQ, 4: PATH_WATCH_REQ, 8: PATH_WATCH_REQ, 12: PATH_WATCH_REQ,
    6: PATH_REQ, 9: PATH_REQ, 103: PATH_REQ, 104: PATH_REQ,
    5: SET_DATA_REQ, 7: SET_ACL_REQ, 13: CHECK_REQ, 17: WATCHES_REQ, 18: WATCHES_REQ,
    106: ADD_WATCH_REQ, 100: AUTH_REQ, 105: SET_WATCHES2_REQ, 16: RECONFIG_REQ,
    14: "multi", 22: "multi",
}


def load(name):
    frames = {}
    for line in (FIXTURES / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, hexdata = line.split(None, 1)
        frames[key] = bytes.fromhex(hexdata.strip())
    return frames


def prefixed(frame):
    return struct.pack(">i", len(frame)) + frame


class Corpus:
    def __init__(self, target):
        self.dir = CORPUS / target
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("seed-*"):
            old.unlink()
        self.names = set()

    @property
    def count(self):
        return len(self.names)

    def add(self, name, data):
        assert name not in self.names, f"{self.dir.name}: two seeds named {name}"
        self.names.add(name)
        (self.dir / f"seed-{name}").write_bytes(data)


def main():
    replies = load("server_replies.txt")
    requests = load("client_requests.txt")

    frame_decoder = Corpus("frame_decoder")
    reply_decoders = Corpus("reply_decoders")
    multi_results = Corpus("multi_results")
    request_decoders = Corpus("requests")

    # frame_decoder: [chunk-plan length, extra limit, plan..., stream].
    for name, frame in replies.items():
        frame_decoder.add(name, bytes([0, 0xFF]) + prefixed(frame))
    reply_stream = b"".join(prefixed(f) for f in replies.values())
    request_stream = b"".join(prefixed(f) for f in requests.values())
    plans = {"whole": b"", "bytewise": b"\x00", "odd": b"\x02\x06\x80", "big": b"\x81\x90"}
    for plan_name, plan in plans.items():
        frame_decoder.add(f"replies-{plan_name}", bytes([len(plan), 0x40]) + plan + reply_stream)
    frame_decoder.add("requests-odd", bytes([2, 0x20, 0x04, 0x0B]) + request_stream)
    frame_decoder.add("truncated", bytes([1, 0xFF, 0x05]) + reply_stream[:301])
    frame_decoder.add("negative-length", bytes([0, 0xFF]) + prefixed(replies["ping"]) + b"\xff\xff\xff\xfe")
    frame_decoder.add("over-4096", bytes([0, 0xFF]) + prefixed(replies["ping"]) + b"\x00\x00\x10\x01")

    # reply_decoders: [selector, record] and [selector | 0x80, header + record].
    for name, frame in replies.items():
        if name.startswith("connect_response"):
            reply_decoders.add(name, bytes([CONNECT_RESPONSE]) + frame)
            continue
        body_kind = REPLY_BODY.get(name)
        if body_kind == "multi":
            multi_results.add(name, frame[16:])
            reply_decoders.add(f"{name}-header", bytes([MULTI_HEADER]) + frame[16:29])
        elif body_kind is None:
            reply_decoders.add(name, bytes([REPLY_HEADER]) + frame)
        else:
            reply_decoders.add(name, bytes([WITH_HEADER | body_kind]) + frame)
            reply_decoders.add(f"{name}-body", bytes([body_kind]) + frame[16:])
    reply_decoders.add("connect_response-no-flag", bytes([CONNECT_RESPONSE]) + replies["connect_response"][:-1])
    exists_body = replies["exists"][16:]
    reply_decoders.add("stat", bytes([STAT]) + exists_body[-68:])
    acl_body = replies["get_acl"][16:]
    acl = acl_body[4:-68]
    reply_decoders.add("acl", bytes([ACL]) + acl)
    reply_decoders.add("id", bytes([ID]) + acl[4:])
    reply_decoders.add("client_info", bytes([CLIENT_INFO]) + replies["who_am_i_anonymous"][20:])
    reply_decoders.add("set_watches2-record", bytes([SET_WATCHES2]) + requests["set_watches2"][8:])
    # A DIGEST-MD5 challenge in the shape the JDK's server mechanism sends (written by hand, not
    # captured), and an empty token.
    challenge = b'realm="zk-sasl-md5",nonce="OA6MG9tEQGm2hh",qop="auth",charset=utf-8,algorithm=md5-sess'
    reply_decoders.add("set_sasl-challenge", bytes([SET_SASL]) + struct.pack(">i", len(challenge)) + challenge)
    reply_decoders.add("set_sasl-empty", bytes([SET_SASL]) + struct.pack(">i", -1))

    # requests: the bare ConnectRequest, and [selector | 0x80, RequestHeader + record].
    for name, frame in requests.items():
        if name.startswith("connect_request"):
            request_decoders.add(name, bytes([CONNECT_REQUEST]) + frame)
            continue
        (op,) = struct.unpack(">i", frame[4:8])
        body_kind = REQUEST_BODY.get(op)
        if body_kind == "multi":
            multi_results.add(f"request-{name}", frame[8:])
            body_kind = MULTI_REQ
        if body_kind is None:
            request_decoders.add(name, bytes([REQUEST_HEADER]) + frame)
        else:
            request_decoders.add(name, bytes([WITH_HEADER | body_kind]) + frame)
            request_decoders.add(f"{name}-body", bytes([body_kind]) + frame[8:])
    request_decoders.add("connect_request-no-flag", bytes([CONNECT_REQUEST]) + requests["connect_request"][:-1])
    request_decoders.add("reconfig", bytes([RECONFIG_REQ]) + b"".join(
        struct.pack(">i", len(s)) + s for s in (b"server.4=127.0.0.1:2888:3888;2181", b"2", b"")
    ) + struct.pack(">q", -1))

    for corpus in (frame_decoder, reply_decoders, multi_results, request_decoders):
        print(f"{corpus.dir.relative_to(FUZZ.parent)}: {corpus.count} seed files")


if __name__ == "__main__":
    main()
