"""A client written by someone else: Python's `websockets` package (PyPI), to show that GET /ws
speaks standard RFC 6455. Run by test_websocket.py with the project venv's interpreter
(.venv, created by scripts/setup.sh):

    ws_websockets_client.py PORT TOKEN CONVERSATION_ID CONTENT

Connects with the token as the `bearer.<jwt>` subprotocol (next to `chat4all.v1`), prints
{"ready": ...} once greeted, then waits (20 s at most) for the message.created event with
CONTENT, prints {"received": event} and closes. Exit status 0 on success.
"""

import json
import sys

from websockets.sync.client import connect


def main() -> int:
    port, token, conv, content = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["chat4all.v1", "bearer." + token],
                 open_timeout=10, close_timeout=5) as ws:
        hello = json.loads(ws.recv(timeout=10))
        print(json.dumps({"ready": hello, "subprotocol": ws.subprotocol}), flush=True)
        while True:
            ev = json.loads(ws.recv(timeout=20))
            if (ev.get("type") == "message.created" and ev["message"]["conversation_id"] == conv
                    and ev["message"]["payload"].get("content") == content):
                print(json.dumps({"received": ev}), flush=True)
                return 0


if __name__ == "__main__":
    sys.exit(main())
