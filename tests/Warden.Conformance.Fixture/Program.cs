using ModelContextProtocol.AspNetCore;
using Warden.Conformance.Fixture;

var builder = WebApplication.CreateBuilder(args);

// The suite and the gateway reach the fixture over loopback only; refusing anything else keeps a test
// server with no authentication from being exposed by a mistyped --urls.
builder.WebHost.UseUrls(LoopbackGuard.ValidateUrls(builder.Configuration["urls"] ?? "http://127.0.0.1:3001"));
builder.Logging.SetMinimumLevel(LogLevel.Warning);

// The SSE polling scenario resumes a stream after the server closes it, which needs stored events.
builder.Services.AddDistributedMemoryCache();
builder.Services.AddSingleton<ResourceSubscriptions>();

var mcp = builder.Services
    .AddMcpServer(o => o.ServerInfo = new() { Name = "warden-conformance-fixture", Version = "1.0.0" })
    .WithHttpTransport(o =>
    {
        // Sampling, elicitation, logging and subscriptions need a session the server can talk back to.
        o.SessionMode = HttpServerSessionMode.Stateful;
    })
    .WithTools<FixtureTools>()
    .WithTools([FixtureTools.JsonSchema2020Tool()])
    .WithPrompts<FixturePrompts>()
    .WithResources<FixtureResources>()
    .WithSubscribeToResourcesHandler(ResourceSubscriptions.SubscribeAsync)
    .WithUnsubscribeFromResourcesHandler(ResourceSubscriptions.UnsubscribeAsync)
    .WithCompleteHandler(FixtureCompletions.CompleteAsync)
    .WithSetLoggingLevelHandler((_, _) => ValueTask.FromResult(new ModelContextProtocol.Protocol.EmptyResult()));

// Stateful mode is what 2025-11-25 clients (the suite's) need; the SDK marks its event store obsolete for that reason only.
#pragma warning disable MCP9006
mcp.WithDistributedCacheEventStreamStore();
#pragma warning restore MCP9006

var app = builder.Build();
app.Use(LoopbackGuard.RejectForeignHostOrOrigin);
app.MapMcp("/mcp");
app.MapGet("/health", () => "ok");
await app.RunAsync();
