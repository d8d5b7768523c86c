using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;
using Warden.Core.Identity;
using Warden.Core.Storage;
using Warden.Gateway.Configuration;

namespace Warden.Gateway.Tests.Infrastructure;

/// <summary>
/// One Warden gateway running in-process on a free loopback port, with its own temp folder (data, policy,
/// config) and an operator token made through the store the way <c>warden init</c> makes the first one.
/// Everything it started (MCP clients, upstream children) is stopped on dispose.
/// </summary>
internal sealed class WardenGateway : IAsyncDisposable
{
    /// <summary>Allows every tool call, resource read and prompt: for tests about the proxy, not policy.</summary>
    public const string AllowAllPolicy = """
        version: 1
        default: deny
        rules:
          - id: allow-everything
            match: { method: [tools/call, resources/read, prompts/get] }
            effect: allow
        """;

    private readonly List<IAsyncDisposable> _clients = [];
    private readonly TempDir _temp;
    private readonly bool _ownsTemp;

    private WardenGateway(WebApplication app, TempDir temp, bool ownsTemp, string? policyPath, Uri baseUri, string operatorToken)
    {
        App = app;
        _temp = temp;
        _ownsTemp = ownsTemp;
        PolicyPath = policyPath;
        BaseUri = baseUri;
        OperatorToken = operatorToken;
        Http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>WARDEN_TEST_SDK_LOG=Trace also logs what the test clients send and receive.</summary>
    public static ILoggerFactory? ClientLoggerFactory { get; } =
        Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("WARDEN_TEST_SDK_LOG"), out var level)
            ? LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(level))
            : null;

    public WebApplication App { get; }

    public Uri BaseUri { get; }

    public Uri McpUri => new(BaseUri, "mcp");

    public string? PolicyPath { get; }

    public string OperatorToken { get; }

    /// <summary>A client with no credentials; requests add their own.</summary>
    public HttpClient Http { get; }

    public string TempPath => _temp.Path;

    /// <summary>
    /// Starts a gateway. <paramref name="serversYaml"/> is the body of <c>servers:</c> (already indented by two);
    /// <paramref name="policy"/> is written to policy.yaml (null: no policy configured); <paramref name="extraYaml"/>
    /// adds top-level settings (mcp: ...).
    /// </summary>
    public static async Task<WardenGateway> StartAsync(
        string serversYaml,
        string? policy = AllowAllPolicy,
        string extraYaml = "",
        bool waitForUpstreams = true,
        TempDir? temp = null)
    {
        var ownsTemp = temp is null;
        temp ??= new TempDir();
        string? policyPath = null;
        var yaml = new StringBuilder();
        yaml.AppendLine("listen: 127.0.0.1:0");
        yaml.AppendLine("data_dir: ./data");
        if (policy is not null)
        {
            policyPath = temp.File("policy.yaml");
            await File.WriteAllTextAsync(policyPath, policy);
            yaml.AppendLine("policy: ./policy.yaml");
        }

        if (extraYaml.Length > 0)
        {
            yaml.AppendLine(extraYaml);
        }

        yaml.AppendLine("servers:");
        yaml.AppendLine(serversYaml);
        var configPath = temp.File("warden.yaml");
        await File.WriteAllTextAsync(configPath, yaml.ToString());
        var config = ConfigLoader.Load(configPath);

        var app = GatewayHost.Build(config, new GatewayOptions
        {
            Listen = "127.0.0.1:0",
            // WARDEN_TEST_LOG=Debug shows the gateway's log (dotnet test --logger "console;verbosity=detailed").
            LogLevel = Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("WARDEN_TEST_LOG"), out var level) ? level : LogLevel.Warning,
            ConfigureLogging = Environment.GetEnvironmentVariable("WARDEN_TEST_SDK_LOG") is { } sdk && Enum.TryParse<LogLevel>(sdk, out var sdkLevel)
                ? b => b.AddFilter("ModelContextProtocol", sdkLevel).AddFilter("ModelContextProtocol.Server.McpServer", sdkLevel)
                : null,
        });
        try
        {
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            var baseUri = new Uri(address.TrimEnd('/') + "/");

            // The first operator is made by writing the store, exactly as 'warden init' does.
            var store = app.Services.GetRequiredService<IWardenStore>();
            var token = Tokens.Create(PrincipalKind.Operator);
            Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Operator, "test-operator", [], DateTimeOffset.UtcNow), Tokens.Hash(token)));
            await store.PublishChangeAsync(ChangeTopics.Principal, "test-operator", "added");

            var gateway = new WardenGateway(app, temp, ownsTemp, policyPath, baseUri, token);
            if (waitForUpstreams && config.Servers.Count > 0)
            {
                await gateway.WaitForUpstreamsAsync();
            }

            return gateway;
        }
        catch
        {
            await app.StopAsync();
            await app.DisposeAsync();
            if (ownsTemp)
            {
                temp.Dispose();
            }

            throw;
        }
    }

    // ---- API ---------------------------------------------------------------------------------------

    public async Task<HttpResponseMessage> ApiAsync(HttpMethod method, string path, string? token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, "api/v1/" + path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return await Http.SendAsync(request);
    }

    /// <summary>Adds an agent through <c>POST /api/v1/agents</c> with the operator token; returns its token.</summary>
    public async Task<string> AddAgentAsync(string name, params string[] groups)
    {
        using var response = await ApiAsync(HttpMethod.Post, "agents", OperatorToken, new { name, groups });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"adding agent {name}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!["token"]!.GetValue<string>();
    }

    /// <summary>Adds an operator or approver (<paramref name="route"/>: operators, approvers); returns its token.</summary>
    public async Task<string> AddPrincipalAsync(string route, string name, params string[] groups)
    {
        using var response = await ApiAsync(HttpMethod.Post, route, OperatorToken, new { name, groups });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"adding {route} {name}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!["token"]!.GetValue<string>();
    }

    /// <summary>Lists approvals as the operator.</summary>
    public async Task<List<JsonNode>> ApprovalsAsync(string? state = null, int limit = 200)
    {
        using var response = await ApiAsync(HttpMethod.Get, $"approvals?limit={limit}" + (state is null ? "" : "&state=" + state), OperatorToken);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"approvals: {(int)response.StatusCode} {text}");
        return [.. JsonNode.Parse(text)!["approvals"]!.AsArray().Select(a => a!)];
    }

    /// <summary>Reads one approval as the operator.</summary>
    public async Task<JsonNode> ApprovalAsync(string id)
    {
        using var response = await ApiAsync(HttpMethod.Get, "approvals/" + id, OperatorToken);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"approval {id}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>Decides an approval with a token, on the digest shown in <paramref name="approval"/> unless another is given.</summary>
    public async Task<(HttpStatusCode Status, string Body)> DecideAsync(JsonNode approval, string token, string decision, string? reason = null, string? digest = null, string? rememberFor = null)
    {
        using var response = await ApiAsync(HttpMethod.Post, $"approvals/{approval["id"]!.GetValue<string>()}/decision", token,
            new { decision, reason, digest = digest ?? approval["digest"]!.GetValue<string>(), rememberFor });
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async Task<JsonNode> StatusAsync()
    {
        using var response = await ApiAsync(HttpMethod.Get, "status", OperatorToken);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"status: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    public async Task<JsonNode> UpstreamStatusAsync(string name) =>
        (await StatusAsync())["upstreams"]!.AsArray().Single(u => u!["name"]!.GetValue<string>() == name)!;

    public Task WaitForUpstreamsAsync(TimeSpan? timeout = null) =>
        Wait.UntilAsync(
            async () => (await StatusAsync())["upstreams"]!.AsArray().All(u => u!["state"]!.GetValue<string>() == "up"),
            "every upstream to be up",
            timeout ?? TimeSpan.FromSeconds(60),
            pollMs: 50);

    // ---- MCP ---------------------------------------------------------------------------------------

    /// <summary>Connects the official C# SDK client over Streamable HTTP with the agent's token (none: no header).</summary>
    public async Task<McpClient> ConnectAsync(string? token, McpClientOptions? options = null, Func<IClientTransport, IClientTransport>? wrap = null)
    {
        var headers = new Dictionary<string, string>();
        if (token is not null)
        {
            headers["Authorization"] = "Bearer " + token;
        }

        IClientTransport transport = new HttpClientTransport(
            new HttpClientTransportOptions
            {
                Endpoint = McpUri,
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = headers,
            },
            ClientLoggerFactory);
        if (wrap is not null)
        {
            transport = wrap(transport);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var client = await McpClient.CreateAsync(transport, options, ClientLoggerFactory, timeout.Token);
        lock (_clients)
        {
            _clients.Add(client);
        }

        return client;
    }

    /// <summary>Sends a raw POST to /mcp, for what the SDK client would never send.</summary>
    public async Task<HttpResponseMessage> PostMcpAsync(string body, string? token, string? sessionId = null, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "mcp") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (sessionId is not null)
        {
            request.Headers.Add("Mcp-Session-Id", sessionId);
            request.Headers.Add("MCP-Protocol-Version", RawMcp.ProtocolVersion);
        }

        configure?.Invoke(request);
        return await Http.SendAsync(request);
    }

    /// <summary>Opens an MCP session by hand (initialize + initialized) and returns its id.</summary>
    public async Task<string> OpenRawSessionAsync(string token)
    {
        using var init = await PostMcpAsync(RawMcp.Initialize(), token);
        var text = await init.Content.ReadAsStringAsync();
        Assert.True(init.StatusCode == HttpStatusCode.OK, $"initialize: {(int)init.StatusCode} {text}");
        var sessionId = init.Headers.GetValues("Mcp-Session-Id").Single();
        using var initialized = await PostMcpAsync("""{"jsonrpc":"2.0","method":"notifications/initialized"}""", token, sessionId);
        Assert.True(initialized.IsSuccessStatusCode, $"initialized: {(int)initialized.StatusCode}");
        return sessionId;
    }

    public async ValueTask DisposeAsync()
    {
        List<IAsyncDisposable> clients;
        lock (_clients)
        {
            clients = [.. _clients];
        }

        foreach (var c in clients)
        {
            try
            {
                await c.DisposeAsync();
            }
            catch
            {
                // The gateway may already have dropped the session.
            }
        }

        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        if (_ownsTemp)
        {
            _temp.Dispose();
        }
    }
}

/// <summary>Hand-made JSON-RPC for raw HTTP tests.</summary>
internal static class RawMcp
{
    public const string ProtocolVersion = "2025-11-25";

    public static string Initialize(int id = 1) =>
        JsonSerializer.Serialize(new
        {
            jsonrpc = "2.0",
            id,
            method = "initialize",
            @params = new { protocolVersion = ProtocolVersion, capabilities = new { }, clientInfo = new { name = "raw-test", version = "1.0" } },
        });

    public static string CallTool(string name, object? arguments = null, int id = 2) =>
        JsonSerializer.Serialize(new { jsonrpc = "2.0", id, method = "tools/call", @params = new { name, arguments = arguments ?? new { } } });

    /// <summary>The JSON-RPC messages of a response, whether sent as JSON or as an SSE stream.</summary>
    public static List<JsonNode> Messages(string body, string? mediaType)
    {
        if (mediaType == "text/event-stream")
        {
            return body.Split('\n')
                .Where(l => l.StartsWith("data:", StringComparison.Ordinal))
                .Select(l => l["data:".Length..].Trim())
                .Where(d => d.Length > 0)
                .Select(d => JsonNode.Parse(d)!)
                .ToList();
        }

        return body.Length == 0 ? [] : [JsonNode.Parse(body)!];
    }

    public static async Task<List<JsonNode>> MessagesAsync(HttpResponseMessage response) =>
        Messages(await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.MediaType);
}
