"""Interop test with the official Python MCP SDK (mcp 2.x) against a running relay.

Usage: python_client.py URL full       every check; prints "ok ..." lines and the wake-up delays
       python_client.py URL restart    initialize, call, print READY, wait for a line on stdin
                                        (the relay restarts meanwhile), call again in the same session
Exits non-zero with the failing check on stderr.
"""
import asyncio
import statistics
import sys
import time

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok {what}", flush=True)


async def call(session, tool, **arguments):
    result = await session.call_tool(tool, arguments)
    return result


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
        check(set(tools["wait_for_messages"].input_schema["required"]) == {"target", "since_id"}, "wait schema")

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
        empty = await call(session, "fetch_messages", target="py-chan", since_id=post_id)
        check(empty.structured_content == {"messages": [], "latest_id": post_id}, "fetch since latest is empty")

        channels = await call(session, "list_channels")
        check("py-chan" in channels.structured_content["channels"], "list_channels has the channel")
        check({"proj-x", "codex", "claude"} <= set(channels.structured_content["channels"]), "configured channels")

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


if __name__ == "__main__":
    url, mode = sys.argv[1], sys.argv[2]
    asyncio.run(full(url) if mode == "full" else restart(url))
