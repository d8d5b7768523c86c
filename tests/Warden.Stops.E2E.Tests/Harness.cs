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
