// Interop test with the official TypeScript MCP SDK against a running relay.
// Usage: node ts_client.mjs URL     (run from a folder whose node_modules has @modelcontextprotocol/sdk)
//        RELAY_BEARER=CREDENTIAL node ts_client.mjs URL NAME   a principal's own credential
// Prints "ok ..." per check; exits non-zero with the failing check on stderr.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(process.argv[2]);

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok ${what}`);
}

async function connect(name) {
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(url));
  return client;
}

const call = (client, name, args = {}) => client.callTool({ name, arguments: args });

// With RELAY_BEARER (a principal's credential) and its name as the next argument: posts as
// that name only, and nothing else is checked.
if (process.env.RELAY_BEARER) {
  const name = process.argv[3];
  const headers = { Authorization: `Bearer ${process.env.RELAY_BEARER}` };
  const client = new Client({ name: "ts-principal", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  const own = await call(client, "post_message", { target: "proj-x", sender: name, text: "from typescript" });
  check(!own.isError && own.structuredContent.ok === true, `posts as ${name}`);
  const forged = await call(client, "post_message", { target: "proj-x", sender: "HumanOverseer", text: "forged" });
  check(forged.isError === true && forged.content[0].text.includes("may not post as"), "another sender is refused");
  const fetched = await call(client, "fetch_messages", { target: "proj-x", since_id: 0 });
  const mine = fetched.structuredContent.messages.find((m) => m.id === own.structuredContent.posted);
  check(mine?.sender === name && !fetched.structuredContent.messages.some((m) => m.text === "forged"), `stored under ${name} alone`);
  await client.close();
  process.exit(0);
}

const client = await connect("ts-interop");
check(client.getServerVersion().name === "claude-codex-relay", "server name");
check((client.getInstructions() ?? "").includes("diff"), "instructions teach the review workflow");

const tools = Object.fromEntries((await client.listTools()).tools.map((t) => [t.name, t]));
for (const name of ["post_message", "fetch_messages", "list_channels", "wait_for_messages"]) {
  check(name in tools, `tool ${name}`);
}
check(JSON.stringify(tools.post_message.inputSchema.required) === '["target","sender","text"]', "post_message schema");
check(tools.fetch_messages.inputSchema.properties.since_id.default === 0, "fetch since_id default");
// The SDK checks each call's structuredContent against the tool's outputSchema and throws on a mismatch.
check(Object.values(tools).every((t) => t.outputSchema?.type === "object"), "every tool declares an output schema");

const posted = await call(client, "post_message", { target: "ts-chan", sender: "typescript", text: "hello from TS" });
check(!posted.isError && posted.structuredContent.ok === true, "post ok");
const postId = posted.structuredContent.posted;
check(Number.isInteger(postId) && postId > 0, "post returns an id");

const fetched = await call(client, "fetch_messages", { target: "ts-chan", since_id: 0, limit: 10 });
check(fetched.structuredContent.messages.map((m) => m.id).join() === String(postId), "fetch returns the post");
check(fetched.structuredContent.latest_id === postId, "latest_id");
check(fetched.structuredContent.messages[0].text === "hello from TS", "text kept");

const prompts = (await client.listPrompts()).prompts.map((p) => p.name).sort();
check(prompts.join() === "post_review_packet,review_latest_packet", "two review prompts");
const review = await client.getPrompt({ name: "review_latest_packet", arguments: { channel: "ts-chan" } });
check(review.messages[0].content.text.includes("hello from TS"), "review prompt quotes the latest packet");
const resources = (await client.listResources()).resources.map((r) => r.uri);
check(resources.includes("relay://channel/ts-chan"), "each channel is a resource");
const read = await client.readResource({ uri: "relay://channel/ts-chan" });
check(JSON.parse(read.contents[0].text).latest_id === postId, "resource holds the channel");

const channels = await call(client, "list_channels");
check(channels.structuredContent.channels.includes("ts-chan"), "list_channels has the channel");

const bad = await call(client, "post_message", { target: "ts-chan", sender: "typescript" });
check(bad.isError === true && bad.content[0].text.includes("text"), "missing text is a tool error naming it");
const badLimit = await call(client, "fetch_messages", { target: "ts-chan", limit: "lots" });
check(badLimit.isError === true && badLimit.content[0].text.includes("limit"), "bad limit is a tool error");

await client.ping();
check(true, "ping");

const other = await connect("ts-other");
const waiter = call(client, "wait_for_messages", { target: "ts-chan", since_id: postId, timeout_s: 20 });
await new Promise((resolve) => setTimeout(resolve, 100));
const reply = await call(other, "post_message", { target: "ts-chan", sender: "reviewer", text: "LGTM" });
const woken = await waiter;
check(!woken.isError && woken.structuredContent.timed_out === false, "wait woken before its timeout");
check(woken.structuredContent.messages.map((m) => m.id).join() === String(reply.structuredContent.posted), "wait returns the other client's post");

await other.close();
await client.close();
