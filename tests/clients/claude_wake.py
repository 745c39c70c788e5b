"""The real Claude Code, woken by the relay through `claude-codex-relay bridge`, offline.

A scripted model (an HTTP server on loopback speaking the Anthropic Messages API, with SSE) stands
in for Anthropic. Claude Code runs headless (`-p --input-format stream-json`, stdin kept open) with
the bridge as its stdio MCP server, answers a first prompt and sits idle. Then `codex` posts on the
channel over REST. The scripted model must get a new request holding that message; it answers with
a post_message tool call, and the reply must appear on the relay.

usage: claude_wake.py RELAY_URL BRIDGE_BINARY CLAUDE_BINARY WORK_DIR [--wake socket|channel]
With RELAY_CLAUDE_CREDENTIAL and RELAY_CODEX_CREDENTIAL set (principals' own), the bridge speaks
with claude's and the REST calls with codex's.
Prints `ok ...` lines and `wake-up delay: N ms`; exits 1 on the first failed check.
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELAY, BRIDGE, CLAUDE, WORK = sys.argv[1:5]
WAKE = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "--wake" else "auto"
CHANNEL, TOOL = "proj-x", "mcp__relay__post_message"
requests = []  # (time, body) of every Messages request, in arrival order
seen = threading.Condition()


def fail(why):
    print(f"FAIL {why}", flush=True)
    sys.exit(1)


def text_of(message):
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(
        b.get("text", "") if b.get("type") == "text" else json.dumps(b.get("content", "")) for b in content or []
    )


def wakes_in(body):
    """The wake-up notices among a request's messages."""
    return [text_of(m) for m in body.get("messages", []) if "New on the relay" in text_of(m)]


def reply_for(body):
    """What the scripted model says: a post_message call for a wake-up not yet answered, else text."""
    wakes = wakes_in(body)
    answered = any(b.get("type") == "tool_result" for m in body.get("messages", []) for b in m.get("content", [])
                   if isinstance(b, dict))
    if wakes and not answered:
        first = next((w for w in wakes[-1].split() if w.startswith("#") and w[1:].isdigit()), "#?")
        args = {"target": CHANNEL, "sender": "claude", "text": f"claude read {first}: looks good"}
        return {"type": "tool_use", "id": "toolu_relay_1", "name": TOOL, "input": args}
    return {"type": "text", "text": "done" if answered else "idle"}


class Model(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, kind, data):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self):
        self.send(200, "text/plain", b"")

    def do_GET(self):
        self.send(404, "application/json", b"{}")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if "count_tokens" in self.path:
            return self.send(200, "application/json", b'{"input_tokens": 10}')
        with seen:
            requests.append((time.monotonic(), body))
            seen.notify_all()
        block = reply_for(body)
        stop = "tool_use" if block["type"] == "tool_use" else "end_turn"
        message = {
            "id": f"msg_{len(requests)}", "type": "message", "role": "assistant", "model": body.get("model", "m"),
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        }
        if not body.get("stream"):
            message.update(content=[block], stop_reason=stop)
            return self.send(200, "application/json", json.dumps(message).encode())
        events = [("message_start", {"message": message})]
        if block["type"] == "tool_use":
            events += [
                ("content_block_start", {"index": 0, "content_block": {**block, "input": {}}}),
                ("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta",
                                                               "partial_json": json.dumps(block["input"])}}),
            ]
        else:
            events += [
                ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
                ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": block["text"]}}),
            ]
        events += [
            ("content_block_stop", {"index": 0}),
            ("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 1}}),
            ("message_stop", {}),
        ]
        data = "".join(f"event: {name}\ndata: {json.dumps({'type': name, **fields})}\n\n" for name, fields in events)
        self.close_connection = True
        self.send(200, "text/event-stream", data.encode())


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    with seen:
        while not (found := check()):
            if not seen.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() >= deadline:
                fail(f"no {what} within {timeout} s")
    return found


def relay(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("RELAY_CODEX_CREDENTIAL"):
        headers["Authorization"] = f"Bearer {os.environ['RELAY_CODEX_CREDENTIAL']}"
    request = urllib.request.Request(RELAY + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def main():
    model = ThreadingHTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    home = os.path.join(WORK, "home")
    project = os.path.join(WORK, "project")
    os.makedirs(home, exist_ok=True)
    os.makedirs(project, exist_ok=True)
    with open(os.path.join(home, ".claude.json"), "w") as f:
        json.dump({"hasCompletedOnboarding": True,
                   "projects": {project: {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}}}, f)
    bridge = [BRIDGE, "bridge", "--url", RELAY, "--as", "claude", "--follow", CHANNEL, "--wake", WAKE]
    config = os.path.join(WORK, "mcp.json")
    with open(config, "w") as f:
        server = {"command": bridge[0], "args": bridge[1:]}
        if os.environ.get("RELAY_CLAUDE_CREDENTIAL"):
            server["env"] = {"CLAUDE_CODEX_AUTH_TOKEN": os.environ["RELAY_CLAUDE_CREDENTIAL"]}
        json.dump({"mcpServers": {"relay": server}}, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(HOME=home, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{model.server_port}", ANTHROPIC_API_KEY="sk-dummy",
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL="1",
               MCP_CONNECTION_NONBLOCKING="0")
    command = [CLAUDE, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
               "--mcp-config", config, "--allowedTools", TOOL]
    if WAKE == "channel":
        command += ["--dangerously-load-development-channels", "server:relay"]
    log = open(os.path.join(WORK, "claude.log"), "w")
    claude = subprocess.Popen(command, cwd=project, env=env, stdin=subprocess.PIPE, stdout=log, stderr=log, text=True)
    try:
        claude.stdin.write(json.dumps({"type": "user", "message": {"role": "user", "content": "hello"}}) + "\n")
        claude.stdin.flush()
        wait_for(lambda: any("hello" in text_of(m) for _, b in requests for m in b.get("messages", [])),
                 60, "first model request")
        print(f"ok Claude Code {CLAUDE} made its first request and is idle", flush=True)
        time.sleep(1.0)  # the bridge's follower reads the channel's end as the session starts
        before = len(requests)
        posted = relay("/api/messages", {"target": CHANNEL, "sender": "codex",
                                         "text": "Review packet: retry policy\n```diff\n-retries = 3\n+retries = 5\n```"})
        start = time.monotonic()
        wake = wait_for(lambda: next((r for r in requests[before:]
                                      if any(f"#{posted['posted']}" in w for w in wakes_in(r[1]))), None),
                        60, "model request holding the post")
        print(f"ok the model was asked again with the post #{posted['posted']} in it", flush=True)
        print(f"wake-up delay: {(wake[0] - start) * 1000:.0f} ms", flush=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page = relay(f"/api/messages?target={CHANNEL}&since_id={posted['posted']}")
            replies = [m for m in page["messages"] if m["sender"] == "claude"]
            if replies:
                break
            time.sleep(0.2)
        else:
            fail("the reply never reached the relay")
        if replies[0]["text"] != f"claude read #{posted['posted']}: looks good" or len(replies) != 1:
            fail(f"unexpected replies {replies}")
        print(f"ok the reply #{replies[0]['id']} is on the relay", flush=True)
        time.sleep(1.0)
        wakes = wakes_in(requests[-1][1])
        if len(wakes) != 1:
            fail(f"the post woke the session {len(wakes)} times: {wakes}")
        print("ok woken once", flush=True)
    finally:
        claude.stdin.close()
        try:
            claude.wait(10)
        except subprocess.TimeoutExpired:
            claude.kill()
        log.close()


if __name__ == "__main__":
    main()
