"""The open Codex session `watch --codex-app-server` wakes, for tests/api/codex_wake.rs: the real Codex
app-server (`codex app-server --listen unix://SOCKET`) against a scripted model on loopback, and
a client standing in for the TUI, which opened a thread and ran a first turn in it.

Usage: codex_wake.py CODEX WORKDIR [RELAY_URL]

With RELAY_URL, the relay is the session's MCP server, and a turn woken by `watch` does what its
text asks: the model calls fetch_messages as the wake says, then post_message (as codex) with
a verdict quoting what it read.

Prints one JSON line {"socket": ..., "thread": ...} once the session's first turn completed, then
takes commands on stdin, one per line, and answers each with one JSON line:
  busy N     starts a turn whose model answer takes N seconds; answers once it runs
  open       opens a second thread: {"thread": ID}
  stop       stops the app-server
  start      starts it again, and the session resumes its thread there
  requests   what the model was asked, in order: {"requests": [[user text, ...], ...],
             "times": [when each arrived, seconds since the epoch, ...],
             "aborted": [request number, ...]} (a stream Codex dropped before its end)
At the end of stdin it stops the app-server and exits."""
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from scripted_codex import answer, function_call, relay_tool, write_config
from websockets.sync.client import unix_connect

requests, arrivals, aborted, lock = [], [], [], threading.Lock()


def user_texts(body):
    """The user's texts in a Responses API request, without Codex's own context blocks."""
    texts = []
    for item in body.get("input", []):
        if isinstance(item, dict) and item.get("role") == "user":
            for part in item.get("content", []):
                if isinstance(part, dict) and part.get("type") == "input_text" and not part["text"].startswith("<"):
                    texts.append(part["text"])
    return texts


def woken_step(body):
    """In a turn `watch` woke: fetch_messages as its text says, then post_message a verdict
    quoting what came back, then a closing message. None outside such a turn, or without the
    relay's tools."""
    texts = user_texts(body)
    wake = texts[-1] if texts else ""
    fetch, post = relay_tool(body, "fetch_messages"), relay_tool(body, "post_message")
    if "on relay channel" not in wake or fetch is None or post is None:
        return None
    items = body.get("input", [])
    last_user = max(i for i, item in enumerate(items) if isinstance(item, dict) and item.get("role") == "user")
    outputs = [item.get("output") for item in items[last_user:]
               if isinstance(item, dict) and item.get("type") == "function_call_output"]
    target = re.search(r'target "([^"]+)"', wake).group(1)
    if not outputs:
        args = {"target": target, "since_id": int(re.search(r"since_id (\d+)", wake).group(1))}
        reader = re.search(r'reader "([^"]+)"', wake)
        if reader:
            args["reader"] = reader.group(1)
        return function_call(fetch, args, f"{len(requests)}a")
    if len(outputs) == 1:
        read = json.dumps(outputs[0])[:400]
        return function_call(post, {"target": target, "sender": "codex", "text": f"verdict on {read}"},
                             f"{len(requests)}b")
    return {"type": "message", "role": "assistant", "id": f"msg_{len(requests)}",
            "content": [{"type": "output_text", "text": "reviewed and answered"}]}


class Model(BaseHTTPRequestHandler):
    """One assistant message per request; a last user text holding SLOWn takes n seconds."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        texts = user_texts(body)
        with lock:
            requests.append(texts)
            arrivals.append(time.time())
            n = len(requests)
        step = woken_step(body)
        if step is not None:
            return answer(self, n, step)
        slow = re.search(r"SLOW(\d+)", texts[-1] if texts else "")
        text = f"reply {n}"
        item = {"type": "message", "role": "assistant", "id": f"msg_{n}",
                "content": [{"type": "output_text", "text": text}]}
        response = {"id": f"resp_{n}", "object": "response", "status": "in_progress", "output": []}
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

        def event(name, data):
            self.wfile.write(f"event: {name}\ndata: {json.dumps(dict(data, type=name))}\n\n".encode())
            self.wfile.flush()

        try:
            event("response.created", {"response": response})
            for _ in range(int(slow.group(1)) * 4 if slow else 0):
                time.sleep(0.25)
                self.wfile.write(b": still working\n\n")  # a dropped stream shows here
                self.wfile.flush()
            event("response.output_item.added", {"output_index": 0, "item": dict(item, content=[])})
            event("response.output_text.delta",
                  {"item_id": item["id"], "output_index": 0, "content_index": 0, "delta": text})
            event("response.output_item.done", {"output_index": 0, "item": item})
            usage = {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11,
                     "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
            event("response.completed", {"response": dict(response, status="completed", output=[item], usage=usage)})
        except (BrokenPipeError, ConnectionResetError):
            with lock:
                aborted.append(n)


class Session:
    """The TUI's side: one connection, subscribed to the threads it starts."""

    def __init__(self, socket_path):
        self.ws = unix_connect(socket_path, "ws://localhost/")
        self.inbox, self.next_id = queue.Queue(), 1
        threading.Thread(target=self._read, daemon=True).start()
        self.call("initialize", {"clientInfo": {"name": "test-session", "version": "0"}})
        self.ws.send(json.dumps({"method": "initialized", "params": {}}))

    def _read(self):
        try:
            for frame in self.ws:
                self.inbox.put(json.loads(frame))
        except Exception:  # the app-server stopped
            pass

    def wait(self, matches, timeout=60):
        deadline = time.time() + timeout
        while True:
            message = self.inbox.get(timeout=max(0.01, deadline - time.time()))
            if matches(message):
                return message

    def call(self, method, params):
        request_id, self.next_id = self.next_id, self.next_id + 1
        self.ws.send(json.dumps({"id": request_id, "method": method, "params": params}))
        answer = self.wait(lambda m: m.get("id") == request_id)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def open_thread(self, cwd):
        return self.call("thread/start", {"cwd": cwd})["thread"]["id"]

    def until_active(self, thread, timeout=60):
        """Until the thread runs a turn, asked with thread/read: the status notification may come
        before turn/start's answer, while `call` passes over it."""
        deadline = time.time() + timeout
        while self.call("thread/read", {"threadId": thread})["thread"]["status"]["type"] != "active":
            if time.time() > deadline:
                raise RuntimeError(f"thread {thread} never became active")
            time.sleep(0.05)

    def turn(self, thread, text):
        return self.call("turn/start", {"threadId": thread, "input": [{"type": "text", "text": text}]})["turn"]["id"]


def main():
    codex, work = sys.argv[1], os.path.abspath(sys.argv[2])
    relay = sys.argv[3] if len(sys.argv) > 3 else None
    model = ThreadingHTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    home = os.path.join(work, "home")
    codex_home = os.path.join(home, ".codex")
    tools = f"""
[mcp_servers.relay]
url = "{relay}/mcp"
default_tools_approval_mode = "approve"
""" if relay else ""
    write_config(codex_home, model.server_address[1], tools)
    socket_path = os.path.join(work, "codex.sock")
    env = dict(os.environ, HOME=home, CODEX_HOME=codex_home, SCRIPTED_API_KEY="sk-test")
    log = open(os.path.join(work, "app-server.log"), "a")

    def start_server():
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        server = subprocess.Popen([codex, "app-server", "--listen", f"unix://{socket_path}"],
                                  env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.time() + 30
        while not os.path.exists(socket_path):
            if time.time() > deadline or server.poll() is not None:
                sys.exit(f"the app-server did not listen on {socket_path} (see app-server.log)")
            time.sleep(0.1)
        return server

    def stop_server():
        server.terminate()
        server.wait(timeout=10)

    server = start_server()
    try:
        session = Session(socket_path)
        thread = session.open_thread(work)
        session.turn(thread, "hello from the session")
        session.wait(lambda m: m.get("method") == "turn/completed")
        print(json.dumps({"socket": socket_path, "thread": thread}), flush=True)
        for line in sys.stdin:
            command = line.split()
            if command[:1] == ["busy"]:
                session.turn(thread, f"long work SLOW{command[1]}")
                session.until_active(thread)
                answer = {"ok": True}
            elif command == ["open"]:
                answer = {"thread": session.open_thread(work)}
            elif command == ["stop"]:
                stop_server()
                answer = {"ok": True}
            elif command == ["start"]:
                server = start_server()
                session = Session(socket_path)
                session.call("thread/resume", {"threadId": thread})
                answer = {"ok": True}
            elif command == ["requests"]:
                with lock:
                    answer = {"requests": list(requests), "times": list(arrivals), "aborted": list(aborted)}
            else:
                answer = {"error": f"unknown command {line.strip()!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        stop_server()


if __name__ == "__main__":
    main()
