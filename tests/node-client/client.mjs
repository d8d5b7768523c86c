// A TypeScript-SDK MCP client with its default settings, used by tests/Warden.Gateway.Tests:
//   node client.mjs URL TOKEN TOOL [ARGS_JSON]
// Connects over Streamable HTTP with "Authorization: Bearer TOKEN", lists the tools, calls TOOL, and prints
// one JSON object: { protocolVersion, server, tools: [names], result }. Exits non-zero on any failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, tool, argsJson] = process.argv.slice(2);
if (!url || !token || !tool) {
  console.error("usage: node client.mjs URL TOKEN TOOL [ARGS_JSON]");
  process.exit(2);
}

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "warden-node-client", version: "1.0.0" });

try {
  await client.connect(transport);
  const tools = await client.listTools();
  const result = await client.callTool({ name: tool, arguments: JSON.parse(argsJson ?? "{}") });
  console.log(JSON.stringify({
    protocolVersion: transport.protocolVersion ?? null,
    server: client.getServerVersion() ?? null,
    tools: tools.tools.map((t) => t.name),
    result,
  }));
  await transport.terminateSession().catch(() => {});
  await client.close();
} catch (err) {
  console.error(`client failed: ${err?.stack ?? err}`);
  await client.close().catch(() => {});
  process.exit(1);
}
