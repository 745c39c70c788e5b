"""An app-server speaking another version of Codex's protocol, for tests/api/codex_wake.rs: on a
unix socket, it answers `initialize` and refuses every other method as Codex refuses one it does
not know (JSON-RPC -32600, "unknown variant `METHOD`").

usage: foreign_app_server.py SOCKET   (serves until killed; prints "ready" once listening)"""
import json
import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import unix_serve


def serve(connection):
    try:
        answer(connection)
    except ConnectionClosed:
        pass  # watch stops as soon as it has the answer it needs


def answer(connection):
    for text in connection:
        message = json.loads(text)
        if "id" not in message:
            continue
        if message.get("method") == "initialize":
            reply = {"id": message["id"], "result": {"userAgent": "codex_next/9.0.0"}}
        else:
            why = f"Invalid request: unknown variant `{message.get('method')}`, expected one of `initialize`"
            reply = {"id": message["id"], "error": {"code": -32600, "message": why}}
        connection.send(json.dumps(reply))


with unix_serve(serve, sys.argv[1]) as server:
    print("ready", flush=True)
    server.serve_forever()
