"""The real Codex CLI against the relay with a principal's own credential, offline.

A scripted model (an HTTP server on loopback speaking the OpenAI Responses API, with SSE) stands
in for OpenAI. `codex exec` runs with the relay as a Streamable HTTP MCP server whose bearer
token comes from the environment variable `bearer_token_env_var` names (RELAY_TOKEN). The
scripted model first calls post_message naming another sender, which the relay must refuse
(the refusal comes back to the model as the tool's output), then as `codex`, which must be
stored under that name.

usage: codex_principal.py RELAY_URL CODEX_BINARY WORK_DIR     (the credential in RELAY_CREDENTIAL)
Prints `ok ...` lines; exits 1 on the first failed check.
"""

import json
import os
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from scripted_codex import answer, function_call, relay_tool, write_config

RELAY, CODEX, WORK = sys.argv[1:4]
CREDENTIAL = os.environ["RELAY_CREDENTIAL"]
CHANNEL = "proj-x"
requests = []  # the body of every Responses request, in arrival order


def fail(why):
    print(f"FAIL {why}", flush=True)
    sys.exit(1)


def outputs(body):
    """The tool outputs the request carries back to the model, in order."""
    return [i.get("output") for i in body.get("input", []) if isinstance(i, dict) and i.get("type") == "function_call_output"]


def next_item(body):
    """A post as someone else, then a post as codex, then a closing message."""
    done = outputs(body)
    tool = relay_tool(body, "post_message")
    if tool is None:
        return {"type": "message", "role": "assistant", "id": "msg_none",
                "content": [{"type": "output_text", "text": "no post_message tool offered"}]}
    if len(done) < 2:
        sender = "HumanOverseer" if not done else "codex"
        args = {"target": CHANNEL, "sender": sender, "text": f"codex speaks as {sender}"}
        return function_call(tool, args, len(done))
    return {"type": "message", "role": "assistant", "id": "msg_done",
            "content": [{"type": "output_text", "text": "done"}]}


class Model(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        requests.append(body)
        n = len(requests)
        item = next_item(body)
        answer(self, n, item)


def relay(path):
    request = urllib.request.Request(RELAY + path, headers={"Authorization": f"Bearer {CREDENTIAL}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def main():
    model = ThreadingHTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    home = os.path.join(WORK, "codex-home")
    write_config(home, model.server_port, f"""
[mcp_servers.relay]
url = "{RELAY}/mcp"
bearer_token_env_var = "RELAY_TOKEN"
default_tools_approval_mode = "approve"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_", "CLAUDE"))}
    env.update(HOME=WORK, CODEX_HOME=home, SCRIPTED_API_KEY="sk-dummy", RELAY_TOKEN=CREDENTIAL)
    log_path = os.path.join(WORK, "codex.log")
    with open(log_path, "w") as log:
        done = subprocess.run([CODEX, "exec", "--skip-git-repo-check", "post a review"], cwd=WORK, env=env,
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=120)
    if not requests:
        fail(f"codex never asked the model (exit {done.returncode}): {open(log_path).read()[-2000:]}")
    tool = relay_tool(requests[0], "post_message")
    if tool is None:
        fail(f"the relay's tools were not offered: {[t.get('name') for t in requests[0].get('tools', [])]}")
    print(f"ok Codex offered the relay's tool as {'.'.join(t for t in tool if t)}", flush=True)
    if len(requests) < 3:
        fail(f"codex stopped after {len(requests)} model requests (exit {done.returncode}): {open(log_path).read()[-2000:]}")
    forged = json.dumps(outputs(requests[1])[0])
    if "may not post as" not in forged:
        fail(f"the post as another sender was not refused: {forged}")
    print("ok the post as HumanOverseer was refused, and the model was told why", flush=True)
    senders = [m["sender"] for m in relay(f"/api/messages?target={CHANNEL}")["messages"]]
    if senders != ["codex"]:
        fail(f"the channel holds posts from {senders}, not one from codex")
    print("ok the post as codex is stored under its name, and nothing else", flush=True)


if __name__ == "__main__":
    main()
