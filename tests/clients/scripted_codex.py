"""What the Codex tests share: a Codex home whose model is a scripted one on loopback (the
Responses API, `SCRIPTED_API_KEY` for its key), and the relay's tools as the model calls them."""
import json
import os


def write_config(codex_home, model_port, extra=""):
    """Writes CODEX_HOME/config.toml for the scripted model on `model_port`, then `extra`."""
    os.makedirs(codex_home, exist_ok=True)
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write(f"""model = "scripted"
model_provider = "scripted"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.scripted]
name = "scripted"
base_url = "http://127.0.0.1:{model_port}/v1"
wire_api = "responses"
env_key = "SCRIPTED_API_KEY"
{extra}""")


def relay_tool(body, name):
    """The relay's tool `name` as a Responses request offers it: (namespace or None, its name),
    or None when it is not offered."""
    for tool in body.get("tools", []):
        if tool.get("type") == "namespace":
            for inner in tool.get("tools", []):
                if inner.get("name") == name and "relay" in tool.get("name", ""):
                    return tool["name"], inner["name"]
        elif tool.get("name", "").endswith(name):
            return None, tool["name"]
    return None


def function_call(tool, args, n):
    """A model output item calling `tool` (from relay_tool) with `args`."""
    namespace, name = tool
    call = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": name,
            "arguments": json.dumps(args), "status": "completed"}
    if namespace:
        call["namespace"] = namespace
    return call


def answer(handler, n, item):
    """Answers request number `n` on `handler` (a BaseHTTPRequestHandler) with `item`, whole, as
    a Responses API event stream."""
    response = {"id": f"resp_{n}", "object": "response", "status": "in_progress", "output": []}
    usage = {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11,
             "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
    events = [("response.created", {"response": response}),
              ("response.output_item.added", {"output_index": 0, "item": item}),
              ("response.output_item.done", {"output_index": 0, "item": item}),
              ("response.completed", {"response": dict(response, status="completed", output=[item], usage=usage)})]
    payload = "".join(f"event: {name}\ndata: {json.dumps(dict(data, type=name))}\n\n" for name, data in events).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)
