using System.Collections.Concurrent;
using System.ComponentModel;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Server;

namespace Warden.Gateway.Tests.Infrastructure;

/// <summary>
/// A tiny Streamable HTTP MCP server (official SDK, ASP.NET Core) that records the headers of every request
/// it receives, so a test can see exactly what Warden sends upstream.
/// </summary>
internal sealed class HeaderRecordingServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private HeaderRecordingServer(WebApplication app, Uri url, ConcurrentQueue<Dictionary<string, string>> requests)
    {
        _app = app;
        Url = url;
        Requests = requests;
    }

    public Uri Url { get; }

    /// <summary>Headers of every request, in arrival order.</summary>
    public ConcurrentQueue<Dictionary<string, string>> Requests { get; }

    public static async Task<HeaderRecordingServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddMcpServer(o => o.ServerInfo = new() { Name = "header-recorder", Version = "1.0.0" })
            .WithHttpTransport(o => o.SessionMode = ModelContextProtocol.AspNetCore.HttpServerSessionMode.Stateful)
            .WithTools<RecorderTools>();
        var app = builder.Build();
        var requests = new ConcurrentQueue<Dictionary<string, string>>();
        app.Use(async (context, next) =>
        {
            requests.Enqueue(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase));
            await next(context);
        });
        app.MapMcp("/mcp");
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new HeaderRecordingServer(app, new Uri(address.TrimEnd('/') + "/mcp"), requests);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    [McpServerToolType]
    public sealed class RecorderTools
    {
        [McpServerTool(Name = "shout", ReadOnly = true), Description("Returns the text in capitals.")]
        public static string Shout([Description("Any text.")] string text) => text.ToUpperInvariant();
    }
}
