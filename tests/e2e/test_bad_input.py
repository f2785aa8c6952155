"""Bad input over every endpoint: each row asserts the status AND error.code (SPEC §3, §8).

Rows are (name, method, path, body, expected status, expected code[, options]). Bodies and paths
use placeholders resolved against the fixture: "{conv}" in paths, "$conv" as a JSON value.
Where the contract leaves two answers open (e.g. a non-numeric id in the path: 400 or 404) a row
lists both; everywhere else it is exact. A 5xx is never acceptable for bad input.
"""

import json
import random
import unittest
import uuid
from dataclasses import dataclass

from harness import (ServerTestCase, User, build_head, create_conversation, make_token, new_id, raw_request,
                     send_text, text_message, unique_name, wait_stored, forge_jwt, jwt_claims)


class Raw(bytes):
    """A body sent as-is (Content-Type application/json unless the row says otherwise)."""


@dataclass
class Form:
    fields: dict


@dataclass
class Row:
    name: str
    method: str
    path: str
    body: object = None
    status: object = 400
    code: object = "invalid_input"
    auth: str = "alice"
    ctype: str | None = None
    field: str | None = None  # expected to appear in one of error.details[].field
    headers: dict | None = None


def row(name, method, path, body=None, status=400, code="invalid_input", **kw):
    return Row(name, method, path, body, status, code, **kw)


NO_BODY = None
JSON_POSTS = [
    ("/auth/register", {"username": "$fresh_name", "password": "long-enough-pw"}),
    ("/auth/token", {"username": "$alice_name", "password": "wrong-password"}),
    ("/auth/refresh", {"refresh_token": "unknown"}),
    ("/auth/revoke", {"token": "unknown"}),
    ("/v1/conversations", {"type": "private", "member_ids": ["$bob"]}),
    ("/v1/conversations/{conv}/read", {}),
    ("/v1/messages", {"message_id": "$newid", "conversation_id": "$conv",
                      "payload": {"type": "text", "content": "hi"}}),
    ("/v1/messages:batch", {"messages": [{"message_id": "$newid", "conversation_id": "$conv",
                                          "payload": {"type": "text", "content": "hi"}}]}),
]

# ------------------------------------------------------------------------ body syntax and type
MALFORMED = [
    ("truncated", Raw(b'{"a":')),
    ("bare word", Raw(b"{bad json}")),
    ("single quotes", Raw(b"{'a': 'b'}")),
    ("trailing comma", Raw(b'{"a": 1,}')),
    ("binary garbage", Raw(b"\xff\xfe\x00\x01garbage")),
    ("two documents", Raw(b"{} {}")),
]
NOT_OBJECT = [("array", Raw(b"[]")), ("string", Raw(b'"text"')), ("number", Raw(b"42")),
              ("null", Raw(b"null")), ("boolean", Raw(b"true"))]

SYNTAX_ROWS = []
for path, good in JSON_POSTS:
    for label, body in MALFORMED:
        SYNTAX_ROWS.append(row(f"malformed JSON ({label})", "POST", path, body, 400, "invalid_json"))
    for label, body in NOT_OBJECT:
        SYNTAX_ROWS.append(row(f"JSON {label} instead of an object", "POST", path, body, 400, "invalid_input"))
    SYNTAX_ROWS += [
        row("nested 1000 deep", "POST", path, Raw(b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}"),
            400, ("invalid_json", "invalid_input")),
        row("nested 100k deep", "POST", path, Raw(b'{"x":' + b"[" * 100000 + b"]" * 100000 + b"}"),
            (400, 413), ("invalid_json", "invalid_input", "payload_too_large")),
        row("invalid UTF-8 in a string", "POST", path, Raw(b'{"username":"\xc3\x28\xa0\xa1"}'),
            400, ("invalid_json", "invalid_input")),
        row("text/plain", "POST", path, good, 415, "unsupported_media_type", ctype="text/plain"),
        row("application/xml", "POST", path, good, 415, "unsupported_media_type", ctype="application/xml"),
    ]
    # The OAuth-style endpoints (token, refresh, revoke) accept form encoding as RFC 6749/7009
    # clients send it; a form without the required field is a field error there.
    if path in ("/auth/token", "/auth/refresh", "/auth/revoke"):
        SYNTAX_ROWS.append(row("form-encoded without the required field", "POST", path,
                               Form({"a": "b"}), 400, "invalid_input"))
    else:
        SYNTAX_ROWS.append(row("form-encoded where only JSON is accepted", "POST", path, Form({"a": "b"}),
                               415, "unsupported_media_type"))

# ------------------------------------------------------------------------------ authentication
AUTHED = [
    ("GET", "/auth/me", NO_BODY),
    ("POST", "/v1/conversations", {"type": "private", "member_ids": ["$bob"]}),
    ("GET", "/v1/conversations", NO_BODY),
    ("GET", "/v1/conversations/{conv}/messages", NO_BODY),
    ("POST", "/v1/conversations/{conv}/read", {}),
    ("POST", "/v1/messages", {"message_id": "$newid", "conversation_id": "$conv",
                              "payload": {"type": "text", "content": "auth"}}),
    ("POST", "/v1/messages:batch", {"messages": [{"message_id": "$newid", "conversation_id": "$conv",
                                                  "payload": {"type": "text", "content": "auth"}}]}),
    ("GET", "/v1/messages/{msg}", NO_BODY),
]
TOKENS = [  # (auth key, status, code)
    ("none", 401, "unauthorized"),
    ("basic", 401, "unauthorized"),
    ("bearer_no_token", 401, ("unauthorized", "invalid_token")),
    ("garbage", 401, "invalid_token"),
    ("three_dots", 401, "invalid_token"),
    ("wrong_secret", 401, "invalid_token"),
    ("alg_none", 401, "invalid_token"),
    ("tampered_payload", 401, "invalid_token"),
    ("refresh_as_access", 401, "invalid_token"),
    ("expired", 401, "token_expired"),
    ("revoked", 401, "token_revoked"),
]
AUTH_ROWS = [row(f"token {t}", m, p, b, s, c, auth=t) for m, p, b in AUTHED for t, s, c in TOKENS]

# ------------------------------------------------------------------------------- per endpoint
TYPES = [("int", 123), ("null", None), ("bool", True), ("array", ["x"]), ("object", {"a": 1}), ("float", 1.5)]

REGISTER = "/auth/register"
REGISTER_ROWS = [
    row("missing username", "POST", REGISTER, {"password": "long-enough-pw"}, field="username"),
    row("missing password", "POST", REGISTER, {"username": "$fresh_name"}, field="password"),
    row("empty object", "POST", REGISTER, {}),
    *[row(f"username {t}", "POST", REGISTER, {"username": v, "password": "long-enough-pw"}, field="username")
      for t, v in TYPES],
    *[row(f"password {t}", "POST", REGISTER, {"username": "$fresh_name", "password": v}, field="password")
      for t, v in TYPES],
    row("username too short", "POST", REGISTER, {"username": "ab", "password": "long-enough-pw"}, field="username"),
    row("username empty", "POST", REGISTER, {"username": "", "password": "long-enough-pw"}, field="username"),
    row("username 51 chars", "POST", REGISTER, {"username": "u" * 51, "password": "long-enough-pw"},
        field="username"),
    row("username with space", "POST", REGISTER, {"username": "bad name", "password": "long-enough-pw"},
        field="username"),
    row("username with slash", "POST", REGISTER, {"username": "bad/name", "password": "long-enough-pw"},
        field="username"),
    row("username non-ASCII", "POST", REGISTER, {"username": "\u00fc\u00fc\u00fc\u00fc", "password": "long-enough-pw"},
        field="username"),
    row("password 7 chars", "POST", REGISTER, {"username": "$fresh_name", "password": "1234567"}, field="password"),
    row("password empty", "POST", REGISTER, {"username": "$fresh_name", "password": ""}, field="password"),
    row("password 257 chars", "POST", REGISTER, {"username": "$fresh_name", "password": "p" * 257},
        field="password"),
    row("username taken", "POST", REGISTER, {"username": "$alice_name", "password": "long-enough-pw"},
        409, "conflict"),
    # boundaries that must be accepted
    row("username 3 chars ok", "POST", REGISTER, {"username": "$name3", "password": "long-enough-pw"}, 201, None),
    row("username 50 chars ok", "POST", REGISTER, {"username": "$name50", "password": "long-enough-pw"}, 201, None),
    row("username with . _ - ok", "POST", REGISTER, {"username": "$name_punct", "password": "long-enough-pw"},
        201, None),
    row("password 8 chars ok", "POST", REGISTER, {"username": "$fresh_name", "password": "12345678"}, 201, None),
    row("password 256 chars ok", "POST", REGISTER, {"username": "$fresh_name", "password": "p" * 256}, 201, None),
    row("charset parameter ok", "POST", REGISTER, {"username": "$fresh_name", "password": "long-enough-pw"},
        201, None, ctype="application/json; charset=utf-8"),
]

TOKEN = "/auth/token"
TOKEN_ROWS = [
    row("wrong password", "POST", TOKEN, {"username": "$alice_name", "password": "wrong-password"},
        401, "invalid_credentials"),
    row("unknown user", "POST", TOKEN, {"username": "$fresh_name", "password": "long-enough-pw"},
        401, "invalid_credentials"),
    row("missing password", "POST", TOKEN, {"username": "$alice_name"}, field="password"),
    row("missing username", "POST", TOKEN, {"password": "long-enough-pw"}, field="username"),
    row("empty object", "POST", TOKEN, {}),
    *[row(f"username {t}", "POST", TOKEN, {"username": v, "password": "long-enough-pw"}) for t, v in TYPES],
    *[row(f"password {t}", "POST", TOKEN, {"username": "$alice_name", "password": v}) for t, v in TYPES],
    row("grant_type unknown", "POST", TOKEN, {"grant_type": "bogus", "username": "$alice_name",
                                              "password": "$alice_password"},
        400, ("invalid_input", "unsupported_grant_type")),
    row("grant_type int", "POST", TOKEN, {"grant_type": 1, "username": "$alice_name",
                                          "password": "$alice_password"}),
    row("client_credentials without secret", "POST", TOKEN,
        {"grant_type": "client_credentials", "client_id": "$alice_name"}),
    row("client_credentials wrong secret", "POST", TOKEN,
        {"grant_type": "client_credentials", "client_id": "$alice_name", "client_secret": "wrong-password"},
        401, "invalid_credentials"),
    row("form wrong password", "POST", TOKEN, Form({"username": "$alice_name", "password": "wrong-password"}),
        401, "invalid_credentials"),
    row("form missing password", "POST", TOKEN, Form({"username": "$alice_name"})),
    row("form client_credentials wrong secret", "POST", TOKEN,
        Form({"grant_type": "client_credentials", "client_id": "$alice_name", "client_secret": "nope-nope"}),
        401, "invalid_credentials"),
]

REFRESH = "/auth/refresh"
REFRESH_ROWS = [
    row("missing refresh_token", "POST", REFRESH, {}, field="refresh_token"),
    *[row(f"refresh_token {t}", "POST", REFRESH, {"refresh_token": v}, field="refresh_token") for t, v in TYPES],
    row("unknown refresh token", "POST", REFRESH, {"refresh_token": "definitely-not-a-refresh-token"},
        401, "invalid_grant"),
    row("access token as refresh token", "POST", REFRESH, {"refresh_token": "$alice_token"}, 401, "invalid_grant"),
    row("empty refresh token", "POST", REFRESH, {"refresh_token": ""}, (400, 401), ("invalid_input", "invalid_grant")),
]

REVOKE = "/auth/revoke"
REVOKE_ROWS = [
    row("missing token", "POST", REVOKE, {}, field="token"),
    *[row(f"token {t}", "POST", REVOKE, {"token": v}, field="token") for t, v in TYPES],
]

CONV = "/v1/conversations"
CONV_ROWS = [
    row("missing type", "POST", CONV, {"member_ids": ["$bob"]}, field="type"),
    row("missing member_ids", "POST", CONV, {"type": "private"}, field="member_ids"),
    row("unknown type", "POST", CONV, {"type": "channel", "member_ids": ["$bob"]}, field="type"),
    *[row(f"type {t}", "POST", CONV, {"type": v, "member_ids": ["$bob"]}, field="type") for t, v in TYPES],
    row("member_ids string", "POST", CONV, {"type": "private", "member_ids": "$bob_str"}, field="member_ids"),
    row("member_ids int", "POST", CONV, {"type": "private", "member_ids": "$bob"}, field="member_ids"),
    row("member_ids null", "POST", CONV, {"type": "private", "member_ids": None}, field="member_ids"),
    row("member_ids object", "POST", CONV, {"type": "private", "member_ids": {"id": "$bob"}}, field="member_ids"),
    row("member id as string", "POST", CONV, {"type": "private", "member_ids": ["$bob_str"]}, field="member_ids"),
    row("member id bool", "POST", CONV, {"type": "private", "member_ids": [True]}, field="member_ids"),
    row("member id null", "POST", CONV, {"type": "private", "member_ids": [None]}, field="member_ids"),
    row("member id float", "POST", CONV, {"type": "private", "member_ids": [1.5]}, field="member_ids"),
    row("member id nested array", "POST", CONV, {"type": "private", "member_ids": [["$bob"]]}, field="member_ids"),
    row("member id 2^64", "POST", CONV, {"type": "private", "member_ids": [2 ** 64]}, field="member_ids"),
    row("member id 10^30", "POST", CONV, Raw(b'{"type":"private","member_ids":[1000000000000000000000000000000]}'),
        field="member_ids"),
    row("member id negative", "POST", CONV, {"type": "private", "member_ids": [-1]}, field="member_ids"),
    row("unknown user id", "POST", CONV, {"type": "private", "member_ids": [987654321]}, field="member_ids"),
    row("unknown user in group", "POST", CONV, {"type": "group", "member_ids": ["$bob", "$carol", 987654321]},
        field="member_ids"),
    row("private with 3 members", "POST", CONV, {"type": "private", "member_ids": ["$bob", "$carol"]},
        field="member_ids"),
    row("private with only self", "POST", CONV, {"type": "private", "member_ids": ["$alice"]}, field="member_ids"),
    row("private with nobody", "POST", CONV, {"type": "private", "member_ids": []}, field="member_ids"),
    row("private with self twice", "POST", CONV, {"type": "private", "member_ids": ["$alice", "$alice"]},
        field="member_ids"),
    row("group with 2 members", "POST", CONV, {"type": "group", "member_ids": ["$bob"]}, field="member_ids"),
    row("group with 2 members after merging", "POST", CONV, {"type": "group", "member_ids": ["$bob", "$bob", "$alice"]},
        field="member_ids"),
    row("group with 101 members", "POST", CONV, {"type": "group", "member_ids": "$hundred"}, field="member_ids"),
    row("group with 10000 member ids", "POST", CONV, {"type": "group", "member_ids": list(range(1, 10001))},
        field="member_ids"),
    row("name int", "POST", CONV, {"type": "group", "member_ids": ["$bob", "$carol"], "name": 5}, field="name"),
    row("name 101 chars", "POST", CONV, {"type": "group", "member_ids": ["$bob", "$carol"], "name": "n" * 101},
        field="name"),
    row("description int", "POST", CONV, {"type": "group", "member_ids": ["$bob", "$carol"], "description": 5},
        field="description"),
    row("group with 100 members ok", "POST", CONV, {"type": "group", "member_ids": "$ninety_nine"}, 201, None),
    row("name 100 chars ok", "POST", CONV, {"type": "group", "member_ids": ["$bob", "$carol"], "name": "n" * 100},
        201, None),
]

LIST_ROWS = [
    *[row(f"limit={v}", "GET", f"{CONV}?limit={v}", field="limit")
      for v in ("0", "101", "-1", "abc", "1.5", "99999999999999999999999")],
    *[row(f"offset={v}", "GET", f"{CONV}?offset={v}", field="offset") for v in ("-1", "abc", "1e3")],
    row("limit=1 ok", "GET", f"{CONV}?limit=1", status=200, code=None),
    row("limit=100 ok", "GET", f"{CONV}?limit=100", status=200, code=None),
]

HIST = "/v1/conversations/{conv}/messages"
HIST_ROWS = [
    *[row(f"limit={v}", "GET", f"{HIST}?limit={v}", field="limit")
      for v in ("0", "101", "-1", "abc", "1.5", "99999999999999999999999")],
    *[row(f"{p}={v}", "GET", f"{HIST}?{p}={v}", field=p)
      for p in ("before_seq", "after_seq", "offset") for v in ("abc", "-1", "1.5")],
    row("limit=1 ok", "GET", f"{HIST}?limit=1", status=200, code=None),
    row("limit=100 ok", "GET", f"{HIST}?limit=100", status=200, code=None),
    row("unknown conversation", "GET", "/v1/conversations/987654321/messages", status=404, code="not_found"),
    row("conversation 0", "GET", "/v1/conversations/0/messages", status=(400, 404), code=("invalid_input", "not_found")),
    row("conversation -5", "GET", "/v1/conversations/-5/messages", status=(400, 404),
        code=("invalid_input", "not_found")),
    row("conversation id not a number", "GET", "/v1/conversations/abc/messages", status=(400, 404),
        code=("invalid_input", "not_found")),
    row("conversation id overflows int64", "GET", "/v1/conversations/99999999999999999999999/messages",
        status=(400, 404), code=("invalid_input", "not_found")),
    row("another user's conversation", "GET", "/v1/conversations/{foreign}/messages", status=403, code="forbidden"),
]

READ = "/v1/conversations/{conv}/read"
READ_ROWS = [
    *[row(f"up_to_seq {t}", "POST", READ, {"up_to_seq": v}, field="up_to_seq")
      for t, v in (("string", "3"), ("bool", True), ("float", 1.5), ("array", [1]), ("object", {}))],
    row("up_to_seq negative", "POST", READ, {"up_to_seq": -1}, field="up_to_seq"),
    row("up_to_seq 2^64", "POST", READ, {"up_to_seq": 2 ** 64}, field="up_to_seq"),
    row("unknown conversation", "POST", "/v1/conversations/987654321/read", {}, 404, "not_found"),
    row("conversation id not a number", "POST", "/v1/conversations/abc/read", {}, (400, 404),
        ("invalid_input", "not_found")),
    row("another user's conversation", "POST", "/v1/conversations/{foreign}/read", {}, 403, "forbidden"),
]


def msg(**over):
    m = {"message_id": "$newid", "conversation_id": "$conv", "payload": {"type": "text", "content": "hello"}}
    for k, v in over.items():
        if v is DROP:
            m.pop(k)
        else:
            m[k] = v
    return m


DROP = object()
MSG = "/v1/messages"
MSG_ROWS = [
    row("missing message_id", "POST", MSG, msg(message_id=DROP), field="message_id"),
    row("missing conversation_id", "POST", MSG, msg(conversation_id=DROP), field="conversation_id"),
    row("missing payload", "POST", MSG, msg(payload=DROP), field="payload"),
    *[row(f"message_id {t}", "POST", MSG, msg(message_id=v), field="message_id") for t, v in TYPES],
    *[row(f"message_id {t}", "POST", MSG, msg(message_id=v), field="message_id")
      for t, v in (("not a uuid", "not-a-uuid"), ("empty", ""), ("bad hex", "00000000-0000-0000-0000-00000000000g"),
                   ("too long", str(uuid.uuid4()) + "0"), ("too short", str(uuid.uuid4())[:-1]))],
    *[row(f"conversation_id {t}", "POST", MSG, msg(conversation_id=v), field="conversation_id")
      for t, v in TYPES if t != "int"],
    row("conversation_id numeric string", "POST", MSG, msg(conversation_id="$conv_str"), field="conversation_id"),
    row("conversation_id 2^64", "POST", MSG, msg(conversation_id=2 ** 64), field="conversation_id"),
    row("conversation_id negative", "POST", MSG, msg(conversation_id=-1), (400, 404), ("invalid_input", "not_found")),
    *[row(f"payload {t}", "POST", MSG, msg(payload=v), field="payload") for t, v in TYPES],
    row("payload type unknown", "POST", MSG, msg(payload={"type": "video", "content": "x"}), field="type"),
    row("payload type missing", "POST", MSG, msg(payload={"content": "x"}), field="type"),
    row("payload content missing", "POST", MSG, msg(payload={"type": "text"}), field="content"),
    *[row(f"payload content {t}", "POST", MSG, msg(payload={"type": "text", "content": v}), field="content")
      for t, v in TYPES],
    row("content empty", "POST", MSG, msg(payload={"type": "text", "content": ""}), field="content"),
    row("content 64 KiB + 1 byte", "POST", MSG, msg(payload={"type": "text", "content": "a" * 65537}),
        field="content"),
    row("content 32769 x 2-byte chars (65538 bytes)", "POST", MSG,
        msg(payload={"type": "text", "content": "\u00e9" * 32769}), field="content"),
    row("file payload, bad file_id", "POST", MSG, msg(payload={"type": "file", "file_id": "nope"}),
        field="file_id"),
    row("file payload, unknown file", "POST", MSG, msg(payload={"type": "file", "file_id": "$uuid"}),
        (400, 404), ("invalid_input", "not_found")),
    row("channels string", "POST", MSG, msg(channels="whatsapp"), field="channels"),
    row("channels unknown value", "POST", MSG, msg(channels=["sms"]), field="channels"),
    row("channels int element", "POST", MSG, msg(channels=[1]), field="channels"),
    row("channels null element", "POST", MSG, msg(channels=[None]), field="channels"),
    row("unknown conversation", "POST", MSG, msg(conversation_id=987654321), 404, "not_found"),
    row("another user's conversation", "POST", MSG, msg(conversation_id="$foreign"), 403, "forbidden"),
    # boundaries that must be accepted
    row("content exactly 64 KiB ok", "POST", MSG, msg(payload={"type": "text", "content": "a" * 65536}), 202, None),
    row("content 32768 x 2-byte chars ok", "POST", MSG,
        msg(payload={"type": "text", "content": "\u00e9" * 32768}), 202, None),
    row("content 1 char ok", "POST", MSG, msg(payload={"type": "text", "content": "x"}), 202, None),
    row("every channel ok", "POST", MSG, msg(channels=["whatsapp", "instagram", "telegram", "messenger"]), 202, None),
    row("channels all ok", "POST", MSG, msg(channels=["all"]), 202, None),
    row("charset parameter ok", "POST", MSG, msg(), 202, None, ctype="application/json; charset=utf-8"),
]

BATCH = "/v1/messages:batch"
BATCH_ROWS = [
    row("missing messages", "POST", BATCH, {}, field="messages"),
    *[row(f"messages {t}", "POST", BATCH, {"messages": v}, field="messages")
      for t, v in TYPES if t != "array"],
    row("messages string", "POST", BATCH, {"messages": "x"}, field="messages"),
    row("501 messages", "POST", BATCH, {"messages": "$batch501"}, field="messages"),
    row("500 messages ok", "POST", BATCH, {"messages": "$batch500"}, 202, None),
]

GETMSG_ROWS = [
    row("unknown message", "GET", "/v1/messages/{unknown_uuid}", status=404, code="not_found"),
    row("message id not a uuid", "GET", "/v1/messages/not-a-uuid", status=(400, 404),
        code=("invalid_input", "not_found")),
    row("another user's message", "GET", "/v1/messages/{foreign_msg}", status=(403, 404),
        code=("forbidden", "not_found")),
]

ROUTE_ROWS = [
    row("unknown route /v1/nope", "GET", "/v1/nope", status=404, code="not_found"),
    row("unknown route /nope", "GET", "/nope", status=404, code="not_found"),
    row("unknown route under a conversation", "POST", "/v1/conversations/{conv}/nope", {}, 404, "not_found"),
    row("unknown route /auth/nope", "POST", "/auth/nope", {}, 404, "not_found"),
    row("unknown route /v1/messages/{msg}/nope", "GET", "/v1/messages/{msg}/nope", status=404, code="not_found"),
    *[row(f"wrong method {m} {p}", m, p, status=405, code="method_not_allowed")
      for m, p in (("DELETE", "/v1/messages"), ("GET", "/v1/messages"), ("PUT", "/v1/conversations"),
                   ("DELETE", "/v1/conversations"), ("GET", "/auth/token"), ("GET", "/auth/register"),
                   ("GET", "/auth/refresh"), ("GET", "/auth/revoke"), ("POST", "/auth/me"),
                   ("GET", "/v1/messages:batch"), ("DELETE", "/v1/conversations/{conv}/messages"),
                   ("GET", "/v1/conversations/{conv}/read"), ("POST", "/v1/messages/{msg}"),
                   ("PATCH", "/healthz"), ("POST", "/metrics"))],
]


class BadInputTest(ServerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        api = cls.api
        cls.alice, cls.bob, cls.carol = User(api, "alice"), User(api, "bob"), User(api, "carol")
        a, b, c = cls.alice, cls.bob, cls.carol
        conv = create_conversation(api, a.token, [b.id], "private")["id"]
        foreign = create_conversation(api, b.token, [c.id], "private")["id"]
        m = send_text(api, a.token, conv, "fixture")
        fm = send_text(api, b.token, foreign, "foreign fixture")
        wait_stored(api, a.token, conv, [m])
        wait_stored(api, b.token, foreign, [fm])
        others = []
        for i in range(100):
            r = api.post("/auth/register", json={"username": unique_name(f"m{i}"), "password": "long-enough-pw"})
            assert r.status == 201, r
            others.append(r.json["user_id"])
        revoked = User(api, "revoked")
        r = api.post("/auth/revoke", json={"token": revoked.token}, token=revoked.token)
        assert r.status == 200, r

        claims = jwt_claims(a.token)
        bob_claims = dict(claims, sub=str(b.id), user_id=b.id)
        h, p, s = a.token.split(".")
        tampered = ".".join([h, forge_jwt(bob_claims).split(".")[1], s])
        cls.auth_headers = {
            "alice": {"Authorization": f"Bearer {a.token}"},
            "none": {},
            "basic": {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
            "bearer_no_token": {"Authorization": "Bearer"},
            "garbage": {"Authorization": "Bearer not-a-token-at-all"},
            "three_dots": {"Authorization": "Bearer a.b.c"},
            "wrong_secret": {"Authorization": "Bearer " + make_token(a.token, secret="x" * 40)},
            "alg_none": {"Authorization": "Bearer " + forge_jwt(dict(claims, exp=claims["exp"] + 600), alg="none")},
            "tampered_payload": {"Authorization": f"Bearer {tampered}"},
            "refresh_as_access": {"Authorization": f"Bearer {a.refresh}"},
            "expired": {"Authorization": "Bearer " + make_token(a.token, iat=int(claims["iat"]) - 7200,
                                                                exp=int(claims["iat"]) - 3600)},
            "revoked": {"Authorization": f"Bearer {revoked.token}"},
        }
        cls.ctx = {
            "conv": conv, "foreign": foreign, "msg": m, "foreign_msg": fm,
            "unknown_uuid": str(uuid.uuid4()),
            "alice": a.id, "bob": b.id, "carol": c.id, "bob_str": str(b.id), "conv_str": str(conv),
            "alice_name": a.name, "alice_password": a.password, "alice_token": a.token,
            "hundred": others, "ninety_nine": others[:99],
            "newid": new_id, "uuid": new_id,
            "fresh_name": lambda: unique_name("fresh"),
            "name3": lambda: uuid.uuid4().hex[:3],
            "name50": lambda: (unique_name("n") + "x" * 50)[:50],
            "name_punct": lambda: "a.b_c-" + uuid.uuid4().hex[:8],
            "batch500": lambda: [text_message(conv, f"b{i}") for i in range(500)],
            "batch501": lambda: [text_message(conv, f"b{i}") for i in range(501)],
        }

    # ------------------------------------------------------------------------------ machinery
    def subst(self, v):
        if isinstance(v, str) and v.startswith("$"):
            val = self.ctx[v[1:]]
            return val() if callable(val) else val
        if isinstance(v, dict):
            return {k: self.subst(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.subst(x) for x in v]
        return v

    def send_row(self, r: Row):
        path = r.path.format(**{k: v for k, v in self.ctx.items() if not callable(v)})
        headers = dict(self.auth_headers[r.auth])
        if r.headers:
            headers.update(r.headers)
        kw = {}
        if isinstance(r.body, Raw):
            kw["raw_body"] = bytes(r.body)
        elif isinstance(r.body, Form):
            kw["form"] = self.subst(r.body.fields)
        elif r.body is not None:
            kw["raw_body"] = json.dumps(self.subst(r.body)).encode()
        if r.ctype:
            kw["content_type"] = r.ctype
        return self.api.request(r.method, path, headers=headers, **kw)

    def run_rows(self, rows):
        for r in rows:
            with self.subTest(f"{r.method} {r.path}: {r.name}"):
                resp = self.send_row(r)
                label = f"{r.method} {r.path} [{r.name}]"
                self.assertLess(resp.status, 500, f"{label}: server error for bad input: {resp!r}")
                if r.code is None:
                    statuses = r.status if isinstance(r.status, tuple) else (r.status,)
                    self.assertIn(resp.status, statuses, f"{label}: {resp!r}")
                else:
                    self.assertError(resp, r.status, r.code, label)
                if r.field is not None and resp.code == "invalid_input":
                    fields = [d.get("field", "") for d in resp.json["error"]["details"]]
                    self.assertTrue(any(r.field in f for f in fields),
                                    f"{label}: details do not name field {r.field!r}: {resp!r}")
                if resp.status == 405:
                    self.assertTrue(resp.headers.get("Allow"), f"{label}: 405 without an Allow header")

    # ----------------------------------------------------------------------------- the tables
    def test_json_syntax_and_content_type(self):
        self.run_rows(SYNTAX_ROWS)

    def test_authentication(self):
        self.run_rows(AUTH_ROWS)

    def test_register(self):
        self.run_rows(REGISTER_ROWS)

    def test_token(self):
        self.run_rows(TOKEN_ROWS)

    def test_refresh(self):
        self.run_rows(REFRESH_ROWS)

    def test_revoke(self):
        self.run_rows(REVOKE_ROWS)

    def test_create_conversation(self):
        self.run_rows(CONV_ROWS)

    def test_list_conversations(self):
        self.run_rows(LIST_ROWS)

    def test_history(self):
        self.run_rows(HIST_ROWS)

    def test_mark_read(self):
        self.run_rows(READ_ROWS)

    def test_send_message(self):
        self.run_rows(MSG_ROWS)

    def test_batch(self):
        self.run_rows(BATCH_ROWS)

    def test_get_message(self):
        self.run_rows(GETMSG_ROWS)

    def test_routes_and_methods(self):
        self.run_rows(ROUTE_ROWS)

    # ------------------------------------------------------------------------ special cases
    def test_batch_per_item_results(self):
        conv, foreign = self.ctx["conv"], self.ctx["foreign"]
        ok1, ok2 = text_message(conv, "batch ok 1"), text_message(conv, "batch ok 2")
        items = [
            (ok1, "accepted", None),
            (dict(text_message(conv, "x"), message_id="not-a-uuid"), "rejected", "invalid_input"),
            (text_message(foreign, "not mine"), "rejected", "forbidden"),
            (text_message(987654321, "nowhere"), "rejected", "not_found"),
            (text_message(conv, ""), "rejected", "invalid_input"),
            (text_message(conv, "a" * 65537), "rejected", "invalid_input"),
            (dict(text_message(conv, "x"), channels=["sms"]), "rejected", "invalid_input"),
            (ok2, "accepted", None),
        ]
        r = self.api.post(BATCH, json={"messages": [m for m, _, _ in items]}, token=self.alice.token)
        self.assertEqual(r.status, 202, r)
        results = r.json["results"]
        self.assertEqual(len(results), len(items), r)
        for (m, status, code), res in zip(items, results):
            self.assertEqual(res.get("message_id"), m["message_id"], res)
            self.assertEqual(res["status"], status, f"{m['message_id']}: {res}")
            if code:
                self.assertEqual(res["error"]["code"], code, res)
                self.assertIsInstance(res["error"].get("message"), str, res)
        hist = wait_stored(self.api, self.alice.token, conv, [ok1["message_id"], ok2["message_id"]])
        stored = {m["message_id"] for m in hist}
        for m, status, _ in items:
            if status == "rejected":
                self.assertNotIn(m["message_id"], stored)
        fh = self.api.get(f"/v1/conversations/{foreign}/messages?limit=100", token=self.bob.token).json["messages"]
        self.assertNotIn("not mine", [m["payload"].get("content") for m in fh])

    def test_batch_item_not_an_object(self):
        conv = self.ctx["conv"]
        ok = text_message(conv, "next to a non-object")
        r = self.api.post(BATCH, json={"messages": [ok, 42, "x", None]}, token=self.alice.token)
        self.assertLess(r.status, 500, r)
        if r.status == 400:
            self.assertError(r, 400, "invalid_input")
        else:
            self.assertEqual(r.status, 202, r)
            res = r.json["results"]
            self.assertEqual(len(res), 4, r)
            self.assertEqual(res[0]["status"], "accepted", r)
            for x in res[1:]:
                self.assertEqual((x["status"], x["error"]["code"]), ("rejected", "invalid_input"), r)

    def test_oversize_bodies(self):
        conv = self.ctx["conv"]
        tok = self.alice.token
        big = "a" * (2 * 1024 * 1024)
        cases = [
            ("2 MiB to /v1/messages", "/v1/messages",
             json.dumps(text_message(conv, big)).encode()),
            ("2 MiB to /auth/register", "/auth/register",
             json.dumps({"username": "bigbody", "password": big}).encode()),
            ("2 MiB to /v1/conversations", "/v1/conversations",
             json.dumps({"type": "group", "member_ids": [1] * (1024 * 1024)}).encode()),
            ("2 MiB to /v1/conversations/{id}/read", f"/v1/conversations/{conv}/read",
             json.dumps({"up_to_seq": 1, "pad": big}).encode()),
            ("41 MiB to the batch", "/v1/messages:batch",
             json.dumps({"messages": [text_message(conv, "a" * (41 * 1024 * 1024))]}).encode()),
        ]
        for label, path, body in cases:
            with self.subTest(label):
                head = build_head("POST", path, {"Authorization": f"Bearer {tok}", "Content-Type": "application/json",
                                                 "Content-Length": str(len(body))})
                r = raw_request(self.server, head, body, timeout=60)
                self.assertIsNotNone(r, f"{label}: connection closed without a response")
                self.assertError(r, 413, "payload_too_large", label)
        with self.subTest("2 MiB chunked to /v1/messages"):
            body = json.dumps(text_message(conv, big)).encode()
            chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                               for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
            head = build_head("POST", "/v1/messages", {"Authorization": f"Bearer {tok}",
                                                       "Content-Type": "application/json",
                                                       "Transfer-Encoding": "chunked"})
            r = raw_request(self.server, head, chunked, timeout=60)
            self.assertIsNotNone(r, "chunked: connection closed without a response")
            self.assertError(r, 413, "payload_too_large", "chunked")
        with self.subTest("Content-Length 2 MiB announced, body not sent"):
            head = build_head("POST", "/v1/messages", {"Authorization": f"Bearer {tok}",
                                                       "Content-Type": "application/json",
                                                       "Content-Length": str(2 * 1024 * 1024)})
            r = raw_request(self.server, head, b"", timeout=20)
            self.assertIsNotNone(r, "connection closed without a response")
            self.assertError(r, 413, "payload_too_large", "announced")
        self.assertEqual(self.api.get("/healthz").status, 200)

    def test_huge_headers(self):
        tok = self.alice.token
        cases = [
            ("one 20 KiB header", {"X-Filler": "a" * 20000}),
            ("400 headers", {f"X-H{i}": "v" * 60 for i in range(400)}),
            ("20 KiB bearer token", {"Authorization": "Bearer " + "a" * 20000}),
            ("20 KiB URL", None),
        ]
        for label, headers in cases:
            with self.subTest(label):
                if headers is None:
                    head = build_head("GET", "/v1/conversations?x=" + "a" * 20000, {"Authorization": f"Bearer {tok}"})
                else:
                    head = build_head("GET", "/auth/me", dict({"Authorization": f"Bearer {tok}"}, **headers))
                r = raw_request(self.server, head, b"", timeout=20)
                self.assertIsNotNone(r, f"{label}: connection closed without a response")
                if headers is None:
                    self.assertIn(r.status, (414, 431), f"{label}: {r!r}")
                else:
                    self.assertEqual(r.status, 431, f"{label}: {r!r}")
                self.assertIsNotNone(r.headers.get("X-Request-ID"), f"{label}: no X-Request-ID")
        self.assertEqual(self.api.get("/healthz").status, 200)

    def test_garbage_requests(self):
        for label, data in (("not HTTP", b"GARBAGE\r\n\r\n"),
                            ("bad version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
                            ("bad content-length", b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"
                                                   b"Content-Length: abc\r\n\r\n"),
                            ("negative content-length", b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"
                                                        b"Content-Length: -5\r\n\r\n"),
                            ("bad chunk size", b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                               b"application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")):
            with self.subTest(label):
                r = raw_request(self.server, data, b"", timeout=20)
                if r is not None:  # closing without an answer is acceptable for non-HTTP bytes
                    self.assertIn(r.status, (400, 505), f"{label}: {r!r}")
        self.assertEqual(self.api.get("/healthz").status, 200)

    def test_fuzzed_fields_never_5xx(self):
        rnd = random.Random(20240601)
        pool = [None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 1e308, -0.0, 0.5,
                "", " ", "x" * 300, "\u0000", "\U0001F4A5", "\ud800",
                [], {}, [1, 2], {"a": 1}, [[[]]], "not-a-uuid", "private", "group", "text", "file"]
        endpoints = [(p, b) for p, b in JSON_POSTS if p != "/auth/revoke"]
        endpoints.append(("/auth/revoke", {"token": "unknown-token-value"}))

        def paths(obj, prefix=()):
            yield prefix
            if isinstance(obj, dict):
                for k, v in obj.items():
                    yield from paths(v, prefix + (k,))
            elif isinstance(obj, list):
                for i, v in enumerate(obj):
                    yield from paths(v, prefix + (i,))

        def mutate(obj, path, action, value):
            if not path:
                return value
            obj = json.loads(json.dumps(obj))
            cur = obj
            for k in path[:-1]:
                cur = cur[k]
            if action == "drop" and isinstance(cur, dict):
                cur.pop(path[-1])
            else:
                cur[path[-1]] = value
            if action == "extra" and isinstance(obj, dict):
                obj["unexpected_" + str(rnd.randint(0, 99))] = value
            return obj

        for path, good in endpoints:
            for i in range(25):
                base = self.subst(good)  # fresh message ids and names every time
                p = rnd.choice(list(paths(base)))
                body = mutate(base, p, rnd.choice(["set", "set", "drop", "extra"]), rnd.choice(pool))
                with self.subTest(f"fuzz {path} #{i}: {json.dumps(body)[:120]}"):
                    r = self.api.request("POST", path.format(conv=self.ctx["conv"]), raw_body=json.dumps(body),
                                         headers=self.auth_headers["alice"])
                    self.assertLess(r.status, 500, f"{path} {body}: {r!r}")
                    if r.status >= 400:
                        self.assertError(r, r.status, None, f"fuzz {path}")

    def test_zz_server_still_healthy_and_working(self):
        """Runs last (alphabetical order): after all the abuse a normal send works."""
        self.assertEqual(self.api.get("/healthz").status, 200)
        a = self.alice
        mid = send_text(self.api, a.token, self.ctx["conv"], "still alive")
        hist = wait_stored(self.api, a.token, self.ctx["conv"], [mid])
        self.assertEqual([m["message_id"] for m in hist].count(mid), 1)
        seqs = [m["seq"] for m in hist]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "seq must stay gap-free after rejected input")


if __name__ == "__main__":
    unittest.main()
