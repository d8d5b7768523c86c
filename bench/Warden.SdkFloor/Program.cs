using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

// The least an MCP gateway built on the official SDK can do per call: Streamable HTTP in (stateful sessions, as
// Warden's default), one shared stdio upstream out, tools/list and tools/call forwarded with the SDK's raw overloads.
// No identity, policy, audit, stops or limits. bench/load/run.sh measures it in the same run as Warden and mcp-proxy,
// so Warden's cost per call can be read as this floor plus what Warden adds.
//   dotnet Warden.SdkFloor.dll PORT COMMAND [ARGS...]
if (args.Length < 2 || !int.TryParse(args[0], out var port))
{
    Console.Error.WriteLine("usage: Warden.SdkFloor PORT COMMAND [ARGS...]");
    return 2;
}

McpClient upstream;
try
{
    upstream = await McpClient.CreateAsync(new StdioClientTransport(new StdioClientTransportOptions
    {
        Name = "upstream",
        Command = args[1],
        Arguments = args[2..],
        InheritEnvironmentVariables = false,
        EnvironmentVariables = StdioClientTransportOptions.GetDefaultEnvironmentVariables(),
    }));
}
catch (Exception ex) when (ex is IOException or InvalidOperationException or McpException or System.ComponentModel.Win32Exception)
{
    Console.Error.WriteLine($"Warden.SdkFloor: cannot start the upstream '{args[1]}': {ex.Message}");
    return 1;
}

await using var _ = upstream;

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, port));
builder.Services.AddMcpServer(o => o.ServerInfo = new Implementation { Name = "sdk-floor", Version = "1" })
    .WithHttpTransport(t => t.SessionMode = HttpServerSessionMode.Stateful)
    .WithListToolsHandler((request, ct) => upstream.ListToolsAsync(request.Params ?? new ListToolsRequestParams(), ct))
    .WithCallToolHandler((request, ct) => upstream.CallToolAsync(request.Params!, ct));

var app = builder.Build();
app.MapMcp("/mcp");
await app.RunAsync();
return 0;
