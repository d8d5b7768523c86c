using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Core.Identity;
using Warden.Gateway;
using Warden.Gateway.Configuration;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Warden.Stops.E2E.Tests;

/// <summary>Paths in the repository: the built CLI and the built workplace sample.</summary>
internal static class Repo
{
    private static readonly Lazy<string> RootDir = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Warden.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("no Warden.slnx above " + AppContext.BaseDirectory);
    });

    public static string Root => RootDir.Value;

    /// <summary>The configuration the tests were built with (Debug or Release), read from the output path.</summary>
    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    public static string WardenDll => Existing(Path.Combine(Root, "src", "Warden.Cli", "bin", Configuration, "net10.0", "warden.dll"));

    public static string WorkplaceDll => Existing(Path.Combine(Root, "artifacts", "workplace-server", "workplace-server.dll"));

    private static string Existing(string path) => File.Exists(path) ? path : throw new FileNotFoundException("not built: " + path, path);
}

/// <summary>
/// A Warden site on a temp folder: warden.yaml, a policy folder, the data folder (SQLite) and the workplace
/// sample's data, with an operator, an approver and two agents whose tokens were written to the store.
/// </summary>
internal sealed class Site : IAsyncDisposable
{
    public const string Agent = "inbox-helper";
    public const string OtherAgent = "other-helper";
    public const string Operator = "ops";

    private readonly List<WebApplication> _gateways = [];

    private Site(string root) => Root = root;

    public string Root { get; }
    public string ConfigPath => Path.Combine(Root, "warden.yaml");
    public string DataDir => Path.Combine(Root, "data");
    public string WorkplaceDir => Path.Combine(Root, "workplace");
    public string OperationsLog => Path.Combine(WorkplaceDir, "operations.log");
    public string OperatorToken { get; private set; } = "";
    public string ApproverToken { get; private set; } = "";
    public string AgentToken { get; private set; } = "";
    public string OtherAgentToken { get; private set; } = "";

    public static string Policy(string limits = "", string extraRules = "") => $$"""
        version: 1
        default: deny
        agents:
          {{Agent}}: { groups: [assistants] }
          {{OtherAgent}}: { groups: [assistants] }
        classes:
          workplace:
            delete_mail: [mutating, destructive]
        rules:
          - id: reads
            match: { class: read_only }
            effect: allow
          - id: deletions
            match: { server: workplace, tool: delete_mail }
            effect: allow
          - id: slow
            match: { server: workplace, tool: slow_operation }
            effect: allow
        {{extraRules}}
        {{(limits.Length == 0 ? "" : "limits:\n" + limits)}}
        """;

    public static async Task<Site> CreateAsync(string policy, int slowMs = 20)
    {
        var site = new Site(Directory.CreateTempSubdirectory("warden-stops-e2e-").FullName);
        Directory.CreateDirectory(Path.Combine(site.Root, "policy"));
        Directory.CreateDirectory(site.DataDir);
        await File.WriteAllTextAsync(Path.Combine(site.Root, "policy", "policy.yaml"), policy);
        await File.WriteAllTextAsync(site.ConfigPath, $"""
            listen: 127.0.0.1:8470
            data_dir: ./data
            store: sqlite
            policy: ./policy/
            servers:
              workplace:
                command: [dotnet, "{Repo.WorkplaceDll}", --data, "{site.WorkplaceDir}", --slow-ms, "{slowMs}"]
                connection: shared
            """);

        // Credentials straight into the store, as 'warden init' does for the first operator.
        await using var store = StoreFactory.Create(site.Config(), TimeProvider.System);
        await store.InitializeAsync();
        site.OperatorToken = await AddAsync(store, PrincipalKind.Operator, Operator, []);
        site.ApproverToken = await AddAsync(store, PrincipalKind.Approver, "alice", ["team-leads"]);
        site.AgentToken = await AddAsync(store, PrincipalKind.Agent, Agent, ["assistants"]);
        site.OtherAgentToken = await AddAsync(store, PrincipalKind.Agent, OtherAgent, ["assistants"]);
        return site;
    }

    private static async Task<string> AddAsync(Core.Storage.IWardenStore store, PrincipalKind kind, string name, string[] groups)
    {
        var token = Tokens.Create(kind);
        Assert.True(await store.AddPrincipalAsync(new Principal(kind, name, groups, DateTimeOffset.UtcNow), Tokens.Hash(token)));
        return token;
    }

    public WardenConfig Config() => ConfigLoader.Parse(File.ReadAllText(ConfigPath), ConfigPath, Root);

    /// <summary>Starts a gateway in this process on a free port.</summary>
    public async Task<WebApplication> StartGatewayAsync()
    {
        var app = GatewayHost.Build(Config(), new GatewayOptions { Listen = "127.0.0.1:0", LogLevel = LogLevel.Warning });
        await app.StartAsync();
        _gateways.Add(app);

        // Upstreams start in the background: wait until the workplace answers (a call no test limits or counts).
        await using var warm = await Agents.ConnectAsync(Url(app), OtherAgentToken);
        await Agents.WarmAsync(warm);
        return app;
    }

    public static string Url(WebApplication app) => app.Urls.First().TrimEnd('/');

    public List<JsonObject> ReadLog()
    {
        if (!File.Exists(OperationsLog))
        {
            return [];
        }

        using var stream = new FileStream(OperationsLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _gateways)
        {
            try
            {
                await app.StopAsync(CancellationToken.None);
                await app.DisposeAsync();
            }
            catch (Exception)
            {
                // Best effort: a test may have stopped it already.
            }
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (Exception)
        {
            // A child still exiting may hold a file for a moment; /tmp leftovers are harmless.
        }
    }
}

/// <summary>The operator API with a bearer token.</summary>
internal sealed class Api(string baseUrl, string token) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = new Uri(baseUrl + "/api/v1/"), Timeout = TimeSpan.FromSeconds(60) };

    public async Task<(HttpStatusCode Status, JsonNode? Body)> SendAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public async Task<JsonNode> StopAgentAsync(string agent, string reason)
    {
        var (status, body) = await SendAsync(HttpMethod.Post, "stops", new { scope = "agent", target = agent, reason });
        Assert.True(status == HttpStatusCode.OK, $"stop: {status} {body}");
        return body!;
    }

    public async Task<JsonArray> ListAsync()
    {
        var (status, body) = await SendAsync(HttpMethod.Get, "stops");
        Assert.Equal(HttpStatusCode.OK, status);
        return body!.AsArray();
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>An agent speaking MCP to the gateway through the SDK client.</summary>
internal static class Agents
{
    public static async Task<McpClient> ConnectAsync(string baseUrl, string token)
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(baseUrl + GatewayHost.McpPath),
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + token },
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        return await McpClient.CreateAsync(transport, cancellationToken: timeout.Token);
    }

    public static async Task<CallToolResult> CallAsync(this McpClient client, string tool, object? args = null, CancellationToken ct = default)
    {
        var dict = args is null
            ? new Dictionary<string, object?>()
            : JsonSerializer.SerializeToElement(args).EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        return await client.CallToolAsync(tool, dict, cancellationToken: ct);
    }

    public static string Text(this CallToolResult result) =>
        string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text));

    /// <summary>Waits for the upstream to have started (the first call can take the child's start-up).</summary>
    public static async Task WarmAsync(McpClient client)
    {
        var last = "";
        var ready = await Wait.UntilAsync(async () =>
        {
            try
            {
                var r = await client.CallAsync("workplace__slow_operation", new { seconds = 0, steps = 1 });
                last = r.Text();
                return r.IsError != true;
            }
            catch (ModelContextProtocol.McpException ex)
            {
                last = ex.Message;
                return false;
            }
        }, TimeSpan.FromSeconds(60));
        Assert.True(ready, "the workplace upstream did not start: " + last);
    }
}

/// <summary>A free TCP port on loopback (for child gateways, which need a fixed --listen).</summary>
internal static class Ports
{
    public static int Free()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>Runs `dotnet warden.dll ARGS` as a child process.</summary>
internal sealed class Child : IDisposable
{
    private readonly StringBuilder _out = new();
    private readonly Process _process;

    private Child(Process process) => _process = process;

    public Process Process => _process;

    public string Output
    {
        get
        {
            lock (_out)
            {
                return _out.ToString();
            }
        }
    }

    public static Child Start(string workingDirectory, IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Repo.WardenDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["WARDEN_CREDENTIALS"] = Path.Combine(workingDirectory, "no-credentials.json");
        psi.Environment.Remove("WARDEN_URL");
        psi.Environment.Remove("WARDEN_TOKEN");
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var p = new Process { StartInfo = psi };
        var child = new Child(p);
        p.OutputDataReceived += (_, e) => child.Append(e.Data);
        p.ErrorDataReceived += (_, e) => child.Append(e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return child;
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_out)
            {
                _out.AppendLine(line);
            }
        }
    }

    /// <summary>Runs a CLI command to its end.</summary>
    public static async Task<(int Exit, string Output)> RunAsync(string workingDirectory, IDictionary<string, string> env, params string[] args)
    {
        using var child = Start(workingDirectory, env, args);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await child._process.WaitForExitAsync(timeout.Token);
        child._process.WaitForExit(); // flush the async readers
        return (child._process.ExitCode, child.Output);
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                // SIGKILL: no graceful shutdown, as a crash.
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(30_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}

internal static class Wait
{
    /// <summary>Polls a condition (generous bounds: the machine is shared and loaded).</summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            try
            {
                if (await condition())
                {
                    return true;
                }
            }
            catch (Exception) when (sw.Elapsed < timeout)
            {
                // Not up yet.
            }

            await Task.Delay(50);
        }

        return await condition();
    }
}
