"""Interop test with the official Python MCP SDK (mcp 2.x) against a running relay.

Usage: python_client.py URL full       every check; prints "ok ..." lines and the wake-up delays
       python_client.py URL modern     the same relay through protocol 2026-07-28 (no initialize)
       python_client.py URL restart    initialize, call, print READY, wait for a line on stdin
                                        (the relay restarts meanwhile), call again in the same session
       python_client.py URL principal NAME   with the credential in RELAY_BEARER: posts as NAME
                                        only (another sender is refused), and reads
Exits non-zero with the failing check on stderr.
"""
import asyncio
import json
import statistics
import sys
import time

import jsonschema
from mcp import Client, ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok {what}", flush=True)


async def call(session, tool, **arguments):
    # The SDK checks structuredContent against the tool's outputSchema and raises on a mismatch.
    result = await session.call_tool(tool, arguments)
    return result


async def prompts_and_resources(session, channel, packet_id, packet_text):
    """The review prompts and the channel resources, as a client that shows them would use them."""
    prompts = {p.name: p for p in (await session.list_prompts()).prompts}
    check(set(prompts) == {"post_review_packet", "review_latest_packet"}, "two review prompts")
    check([a.name for a in prompts["review_latest_packet"].arguments if a.required] == ["channel"],
          "prompts take the channel")
    review = await session.get_prompt("review_latest_packet", {"channel": channel, "reviewer": "nobody"})
    text = review.messages[0].content.text
    check(packet_text in text and f"message {packet_id}" in text, "review prompt quotes the latest packet")
    post = await session.get_prompt("post_review_packet", {"channel": channel})
    check("```diff" in post.messages[0].content.text, "post prompt asks for a diff block")

    uri = f"relay://channel/{channel}"
    listed = [str(r.uri) for r in (await session.list_resources()).resources]
    check(uri in listed, "each channel is a resource")
    templates = (await session.list_resource_templates()).resource_templates
    check([t.uri_template for t in templates] == ["relay://channel/{name}"], "a template for any channel")
    read = await session.read_resource(uri)
    body = json.loads(read.contents[0].text)
    check(read.contents[0].mime_type == "application/json", "resource is JSON")
    check(body["messages"][-1]["id"] == packet_id and body["latest_id"] >= packet_id, "resource holds the channel")
    prompt = types.PromptReference(type="ref/prompt", name="review_latest_packet")
    offered = (await session.complete(prompt, {"name": "channel", "value": channel[:3]})).completion.values
    check(channel in offered and all(v.startswith(channel[:3]) for v in offered), "the channel argument completes")
    template = types.ResourceTemplateReference(type="ref/resource", uri="relay://channel/{name}")
    offered = (await session.complete(template, {"name": "name", "value": ""})).completion.values
    check(channel in offered, "the template's name completes")


async def full(url):
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        check(init.server_info.name == "claude-codex-relay", "server name")
        check("diff" in (init.instructions or ""), "instructions teach the review workflow")

        tools = {t.name: t for t in (await session.list_tools()).tools}
        check(set(tools) >= {"post_message", "fetch_messages", "list_channels", "wait_for_messages"}, "four tools")
        check(tools["post_message"].input_schema["required"] == ["target", "sender", "text"], "post_message schema")
        check(tools["fetch_messages"].input_schema["required"] == ["target"], "fetch_messages schema")
        check(tools["fetch_messages"].input_schema["properties"]["limit"]["default"] == 50, "fetch limit default")
        check(tools["wait_for_messages"].input_schema["required"] == ["target"], "wait schema")
        check("reader" in tools["wait_for_messages"].input_schema["properties"], "wait takes a reader")
        check(all(t.output_schema for t in tools.values()), "every tool declares an output schema")

        posted = await call(session, "post_message", target="py-chan", sender="python", text="```diff\n+py\n```")
        check(not posted.is_error and posted.structured_content["ok"] is True, "post ok")
        post_id = posted.structured_content["posted"]
        check(isinstance(post_id, int) and post_id > 0, "post returns an id")
        check('"posted"' in posted.content[0].text, "result also as a text block")

        fetched = await call(session, "fetch_messages", target="py-chan", since_id=0)
        messages = fetched.structured_content["messages"]
        check([m["id"] for m in messages] == [post_id], "fetch since 0 returns the post")
        check(messages[0]["text"] == "```diff\n+py\n```" and messages[0]["sender"] == "python", "fields kept")
        check(fetched.structured_content["latest_id"] == post_id, "latest_id is the last id")
        mine = await call(session, "fetch_messages", target="py-chan", reader="py-reader")
        check([m["id"] for m in mine.structured_content["messages"]] == [post_id], "a new reader gets the history")
        await call(session, "fetch_messages", target="py-chan", reader="py-reader", since_id=post_id)
        mine = await call(session, "fetch_messages", target="py-chan", reader="py-reader")
        check(mine.structured_content["messages"] == [], "an acknowledged message is not delivered again")
        listed = await call(session, "list_channels", reader="py-reader")
        chan = next(c for c in listed.structured_content["details"] if c["name"] == "py-chan")
        check(chan["unread"] == 0 and chan["readers"] == {"py-reader": post_id}, "list_channels shows the cursor")
        empty = await call(session, "fetch_messages", target="py-chan", since_id=post_id)
        check(empty.structured_content == {"messages": [], "latest_id": post_id}, "fetch since latest is empty")

        for result, tool in [(posted, "post_message"), (fetched, "fetch_messages"), (empty, "fetch_messages")]:
            jsonschema.validate(result.structured_content, tools[tool].output_schema)
        check(True, "results match the output schemas")
        await prompts_and_resources(session, "py-chan", post_id, "```diff\n+py\n```")

        channels = await call(session, "list_channels")
        check("py-chan" in channels.structured_content["channels"], "list_channels has the channel")
        check({"proj-x", "codex", "claude"} <= set(channels.structured_content["channels"]), "configured channels")
        jsonschema.validate(channels.structured_content, tools["list_channels"].output_schema)

        bad = await call(session, "post_message", target="py-chan", text="x")
        check(bad.is_error and "sender" in bad.content[0].text, "missing argument is a tool error naming it")
        bad = await call(session, "fetch_messages", target="py-chan", since_id=-4)
        check(bad.is_error and "since_id" in bad.content[0].text, "negative since_id is a tool error")
        bad = await call(session, "post_message", target=" ", sender="s", text="x")
        check(bad.is_error and "target" in bad.content[0].text, "blank target is a tool error")

        await session.send_ping()
        check(True, "ping")

        # wait_for_messages, woken by a post from a second client session.
        async with streamable_http_client(url) as (r2, w2), ClientSession(r2, w2) as other:
            await other.initialize()
            timed_out = await call(session, "wait_for_messages", target="py-chan", since_id=post_id, timeout_s=0.2)
            check(timed_out.structured_content == {"messages": [], "latest_id": post_id, "timed_out": True},
                  "wait times out with the same latest_id")
            jsonschema.validate(timed_out.structured_content, tools["wait_for_messages"].output_schema)
            delays = []
            last = post_id
            for i in range(20):
                waiter = asyncio.create_task(call(session, "wait_for_messages", target="py-chan",
                                                  since_id=last, timeout_s=20, exclude_sender="python"))
                await asyncio.sleep(0.05)
                check(not waiter.done(), f"wait {i} is waiting")
                # Our own message does not wake it when excluded.
                await call(other, "post_message", target="py-chan", sender="python", text="own")
                await asyncio.sleep(0.05)
                check(not waiter.done(), f"wait {i} ignores the excluded sender")
                sent = time.perf_counter()
                reply = await call(other, "post_message", target="py-chan", sender="reviewer", text=f"wake {i}")
                woken = await waiter
                delays.append((time.perf_counter() - sent) * 1000)
                got = woken.structured_content["messages"]
                check([m["id"] for m in got] == [reply.structured_content["posted"]], f"wait {i} woken by the post")
                last = woken.structured_content["latest_id"]
            print(f"wake-up delay ms (post sent -> waiter's reply), 20 rounds: median {statistics.median(delays):.1f}, "
                  f"max {max(delays):.1f}", flush=True)


async def modern(url):
    # mode="auto" asks server/discover first and takes the newest version both sides speak.
    async with Client(url, mode="auto") as client:
        check(client.protocol_version == "2026-07-28", "negotiated 2026-07-28 through server/discover")
        check(client.server_info.name == "claude-codex-relay", "server name from _meta")
        check("review_latest_packet" in (client.instructions or ""), "instructions name the prompts")
        posted = await client.call_tool("post_message", {"target": "modern", "sender": "py26", "text": "stateless"})
        check(not posted.is_error and posted.structured_content["ok"], "post through 2026-07-28")
        post_id = posted.structured_content["posted"]
        fetched = await client.call_tool("fetch_messages", {"target": "modern", "since_id": 0})
        check([m["id"] for m in fetched.structured_content["messages"]] == [post_id], "fetch through 2026-07-28")
        bad = await client.call_tool("post_message", {"target": "modern", "sender": "py26"})
        check(bad.is_error and "text" in bad.content[0].text, "tool error through 2026-07-28")
        await prompts_and_resources(client.session, "modern", post_id, "stateless")


async def restart(url):
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        first = await call(session, "post_message", target="restart", sender="python", text="before")
        check(not first.is_error, "call before the restart")
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        after = await call(session, "fetch_messages", target="restart", since_id=0)
        ids = [m["id"] for m in after.structured_content["messages"]]
        check(ids == [first.structured_content["posted"]], "same session works after the restart")


async def principal(url):
    """A principal's own credential (RELAY_BEARER), sent as the SDK sends any header."""
    import os
    name = sys.argv[3]
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {os.environ['RELAY_BEARER']}"})
    async with http, streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        own = await call(session, "post_message", target="proj-x", sender=name, text="from python")
        check(not own.is_error and own.structured_content["ok"], f"posts as {name}")
        other = await call(session, "post_message", target="proj-x", sender="HumanOverseer", text="forged")
        check(other.is_error and "may not post as" in other.content[0].text, "another sender is refused")
        fetched = await call(session, "fetch_messages", target="proj-x", since_id=0)
        stored = {m["id"]: (m["sender"], m["text"]) for m in fetched.structured_content["messages"]}
        check(stored.get(own.structured_content["posted"]) == (name, "from python"), f"stored under {name}")
        check("forged" not in [text for _, text in stored.values()], "the forged post was not stored")


if __name__ == "__main__":
    url, mode = sys.argv[1], sys.argv[2]
    asyncio.run({"full": full, "modern": modern, "restart": restart, "principal": principal}[mode](url))
