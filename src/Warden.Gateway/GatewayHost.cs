using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.AspNetCore;
using Warden.Core.Pipeline;
using Warden.Core.Policy;
using Warden.Core.Storage;
using Warden.Gateway.Api;
using Warden.Gateway.Audit;
using Warden.Gateway.Configuration;
using Warden.Gateway.Mcp;
using Warden.Gateway.Policy;
using Warden.Gateway.Security;
using Warden.Gateway.Stops;
using Warden.Core.Stops;
using Warden.Web;

namespace Warden.Gateway;

/// <summary>Settings for building a gateway that the config file does not carry.</summary>
public sealed class GatewayOptions
{
    /// <summary>Overrides the listen address (tests bind port 0).</summary>
    public string? Listen { get; init; }

    /// <summary>The clock; tests pass a fake one.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Minimum log level.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Extra logging setup (tests capture logs).</summary>
    public Action<ILoggingBuilder>? ConfigureLogging { get; init; }

    /// <summary>
    /// False only in <c>bench/Warden.StageHost</c>: calls are decided and forwarded without their audit records, so
    /// the load harness can show what the audit stage costs. Neither the config file nor the CLI can reach it:
    /// Warden itself never forwards a call it has not recorded.
    /// </summary>
    internal bool AuditCalls { get; init; } = true;
}

/// <summary>Builds and runs the gateway: MCP at <c>/mcp</c>, the API under <c>/api/v1</c>, the dashboard at <c>/ui</c>.</summary>
public static class GatewayHost
{
    /// <summary>The MCP endpoint's path.</summary>
    public const string McpPath = "/mcp";

    /// <summary>Builds a gateway application from a loaded config.</summary>
    /// <exception cref="InvalidOperationException">The config is unsafe (an anonymous agent on a non-loopback address).</exception>
    public static WebApplication Build(WardenConfig config, GatewayOptions? options = null)
    {
        options ??= new GatewayOptions();
        var listen = options.Listen ?? config.Listen;
        var (host, port) = ConfigLoader.SplitListen(listen);
        if (config.Mcp.AnonymousAgent is not null && !HostOriginMiddleware.IsLoopbackName(host))
        {
            throw new InvalidOperationException($"mcp.anonymous_agent is set but the listener is bound to {host}: an anonymous agent is allowed only on a loopback address");
        }

        // The content root is the config's folder, which usually holds the data folder too. ASP.NET Core's default
        // appsettings.json reload watches the content root recursively, so every SQLite write (several per call)
        // woke a watcher thread: Warden is configured by warden.yaml and watches its policy files itself.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = config.BaseDirectory,
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.SetMinimumLevel(options.LogLevel);

        // The SDK logs every upstream stderr line itself and logs protocol errors with full stacks; Warden
        // logs what matters once, with the upstream's name.
        builder.Logging.AddFilter("ModelContextProtocol", LogLevel.Warning);
        builder.Logging.AddFilter("ModelContextProtocol.Client.StdioClientTransport", LogLevel.None);
        builder.Logging.AddFilter("ModelContextProtocol.Server.McpServer", LogLevel.Critical);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection", LogLevel.Error);
        options.ConfigureLogging?.Invoke(builder.Logging);

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = config.Mcp.MaxRequestBytes;
            k.AddServerHeader = false;
            if (IPAddress.TryParse(host, out var ip))
            {
                k.Listen(ip, port);
            }
            else if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            {
                k.ListenLocalhost(port);
            }
            else
            {
                k.ListenAnyIP(port);
            }
        });

        var services = builder.Services;
        // Keys for cookies and tokens the web parts issue live in the data folder, so they survive restarts.
        services.AddDataProtection()
            .SetApplicationName("warden")
            .PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(StoreFactory.DataFolder(config), "keys")));
        services.AddSingleton(config);
        services.AddSingleton(options.Time);
        services.AddSingleton<IWardenStore>(_ => StoreFactory.Create(config, options.Time));
        services.AddSingleton<PrincipalDirectory>();
        services.AddSingleton(sp => new PolicyHolder());
        services.AddSingleton<PolicyService>();
        services.AddSingleton<StopTable>();
        services.AddSingleton<AdmissionGate>();
        services.AddSingleton<CallTracker>();
        services.AddSingleton<DenialLog>();
        services.AddSingleton(sp => new StopService(
            sp.GetRequiredService<StopTable>(), sp.GetRequiredService<AdmissionGate>(), sp.GetRequiredService<CallTracker>(),
            sp.GetRequiredService<IWardenStore>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));

        // The decision pipeline, in the order of docs/gateway.md: stop check first, policy last. The data guard
        // adds the agent's labels before policy and, as a filter, scans the arguments once policy has decided.
        services.AddSingleton<Core.DataGuard.LabelTable>();
        services.AddSingleton(sp => new Core.DataGuard.DataGuardStage(sp.GetRequiredService<PolicyHolder>(), sp.GetRequiredService<Core.DataGuard.LabelTable>()));
        services.AddSingleton(sp => new DataGuard.LabelSync(
            sp.GetRequiredService<Core.DataGuard.LabelTable>(), sp.GetRequiredService<IWardenStore>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton(sp => new DataGuard.ResultGuard(
            sp.GetRequiredService<Core.DataGuard.DataGuardStage>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<DataGuard.LabelSync>()));
        services.AddSingleton(sp => new DecisionPipeline(
            [
                new StopStage(sp.GetRequiredService<StopTable>(), () => sp.GetRequiredService<PolicyHolder>().Version),
                sp.GetRequiredService<Core.DataGuard.DataGuardStage>(),
                new PolicyStage(sp.GetRequiredService<PolicyHolder>()),
            ],
            () => sp.GetRequiredService<PolicyHolder>().Version));
        services.AddSingleton(sp => new Core.Limits.LimitCounters(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<PipelineCallDecider>();
        services.AddSingleton<ICallDecider>(sp => sp.GetRequiredService<PipelineCallDecider>());
        services.AddSingleton(config.Approvals);
        services.AddSingleton(sp => new Webhooks.WebhookDispatcher(config, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<Approvals.ApprovalEvents>();
        services.AddSingleton<Approvals.ApprovalService>();
        services.AddHttpContextAccessor();
        services.AddSingleton<McpGateway>();
        services.AddSingleton<GatewayState>();
        services.AddSingleton<DecisionRegistry>();

        // Malformed API bodies become BadHttpRequestException, which ErrorShieldMiddleware answers with a message.
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddHostedService<GatewayLifetime>();
        services.AddWardenAudit(config, options.AuditCalls); // wraps the decider; starts after GatewayLifetime

        // Approvals wrap the audited decider: an ask is recorded as decided before it waits for a human.
        var audited = services.Last(d => d.ServiceType == typeof(ICallDecider));
        services.Remove(audited);
        services.AddSingleton<ICallDecider>(sp => new Approvals.ApprovalCallDecider(
            (ICallDecider)audited.ImplementationFactory!(sp), sp.GetRequiredService<PipelineCallDecider>(),
            sp.GetRequiredService<Approvals.ApprovalService>(), sp.GetRequiredService<Approvals.ApprovalEvents>()));

        // Bearer tokens for agents, the CLI and scripts; a session cookie for people using the dashboard at /ui.
        // The default scheme forwards to the bearer scheme whenever an Authorization header is present.
        services.AddWardenDashboard(DashboardIdentities.Configure);
        services.AddAuthentication(DashboardAuth.Scheme)
            .AddScheme<BearerOptions, BearerAuthenticationHandler>(WardenClaims.Scheme, o =>
            {
                o.AnonymousAgent = config.Mcp.AnonymousAgent;
                o.McpPath = McpPath;
            });
        services.AddAuthorizationBuilder()
            .AddPolicy(Roles.Agent, p => p.RequireClaim(WardenClaims.Kind, "agent"))
            .AddPolicy(Roles.Operator, p => p.RequireClaim(WardenClaims.Kind, "operator"))
            .AddPolicy(Roles.Approver, p => p.RequireClaim(WardenClaims.Kind, "approver"))
            .AddPolicy(Roles.Person, p => p.RequireClaim(WardenClaims.Kind, "operator", "approver"));

        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
            o.SerializerOptions.TypeInfoResolverChain.Insert(1, DecisionJsonContext.Default);
            o.SerializerOptions.TypeInfoResolverChain.Insert(2, StopJsonContext.Default);
            o.SerializerOptions.TypeInfoResolverChain.Insert(3, ApprovalJsonContext.Default);
        });
        services.AddOpenApi("v1", o => o.ShouldInclude = d => d.RelativePath?.StartsWith("api/v1", StringComparison.Ordinal) == true);

        var stateless = config.Mcp.Sessions == "stateless";
        services.AddMcpServer()
            .WithHttpTransport(t =>
            {
                t.SessionMode = stateless ? HttpServerSessionMode.Stateless : HttpServerSessionMode.Stateful;
                t.ConfigureSessionOptions = (http, mcp, _) =>
                {
                    http.RequestServices.GetRequiredService<McpGateway>().Configure(mcp);
                    return Task.CompletedTask;
                };
                t.RunSessionHandler = (http, server, ct) =>
                    http.RequestServices.GetRequiredService<McpGateway>().RunSessionAsync(http.User, server, ct);
            });

        var app = builder.Build();
        app.UseMiddleware<HostOriginMiddleware>(config.Mcp.AllowedHosts, config.Mcp.AllowedOrigins);
        app.UseMiddleware<ErrorShieldMiddleware>();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapWardenDashboard(); // before the API: its CSRF check guards every cookie request to /api/v1
        app.MapMcp(McpPath).RequireAuthorization(Roles.Agent);
        app.MapWardenApi();
        app.MapWardenAudit();
        app.MapOpenApi("/api/v1/openapi.json").AllowAnonymous();
        return app;
    }
}

/// <summary>Authorization policy names.</summary>
public static class Roles
{
    /// <summary>Agents.</summary>
    public const string Agent = "agent";

    /// <summary>Operators.</summary>
    public const string Operator = "operator";

    /// <summary>Approvers.</summary>
    public const string Approver = "approver";

    /// <summary>Operators or approvers: people.</summary>
    public const string Person = "person";
}
