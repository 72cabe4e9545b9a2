// Drives tokentally's /mcp endpoint with the official MCP TypeScript SDK client.
//
// Usage: node mcp_client.mjs <url> <bearer-token> <calls-json>
// <calls-json> is a JSON array of {"name": tool, "arguments": {...}}.
// Prints one JSON object: server info, negotiated protocol version, the tool
// list (names, annotations, whether an output schema is present) and every
// call's result (structuredContent, text, isError).

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token, callsJson] = process.argv.slice(2);
if (!url || token === undefined || !callsJson) {
  console.error('usage: node mcp_client.mjs <url> <bearer-token> <calls-json>');
  process.exit(2);
}
const calls = JSON.parse(callsJson);

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: token ? { Authorization: `Bearer ${token}` } : {} },
});
const client = new Client({ name: 'tokentally-interop', version: '1.0.0' });
await client.connect(transport);

const listed = await client.listTools();
const results = [];
for (const call of calls) {
  try {
    const r = await client.callTool({ name: call.name, arguments: call.arguments ?? {} });
    results.push({
      name: call.name,
      isError: r.isError ?? false,
      structuredContent: r.structuredContent ?? null,
      text: (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n'),
    });
  } catch (e) {
    results.push({ name: call.name, protocolError: String(e?.message ?? e) });
  }
}
const out = {
  serverInfo: client.getServerVersion(),
  protocolVersion: transport.protocolVersion ?? null,
  instructions: client.getInstructions() ?? null,
  tools: listed.tools.map((t) => ({
    name: t.name,
    readOnlyHint: t.annotations?.readOnlyHint ?? null,
    hasOutputSchema: Boolean(t.outputSchema),
    described: Object.values(t.inputSchema?.properties ?? {}).every((p) => typeof p.description === 'string' && p.description.length > 0),
  })),
  results,
};
await client.close();
console.log(JSON.stringify(out));
