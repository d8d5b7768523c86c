using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using ModelContextProtocol.Client;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>The <c>warden</c> CLI as a separate process against a live gateway, and <c>warden stdio</c>.</summary>
[Trait("Category", "E2E")]
public sealed class CliTests(CliTests.Fixture fx) : IClassFixture<CliTests.Fixture>
{
    public sealed class Fixture : GatewayFixture
    {
        public string Token { get; private set; } = "";

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", temp.Sub("workplace")), temp: temp);
            Token = await gateway.AddAgentAsync("cli-bridge-agent");
            return gateway;
        }
    }

    private Task<Processes.Result> WardenAsync(string? url, string? token, params string[] args)
    {
        var env = new Dictionary<string, string?>
        {
            // An empty credentials file of our own: never the developer's saved token.
            ["WARDEN_CREDENTIALS"] = fx.Temp.File("credentials.json"),
        };
        if (url is not null)
        {
            env["WARDEN_URL"] = url;
        }

        if (token is not null)
        {
            env["WARDEN_TOKEN"] = token;
        }

        return Processes.RunAsync("dotnet", [Repo.WardenDll, .. args], env);
    }

    private Task<Processes.Result> AsOperatorAsync(params string[] args) => WardenAsync(fx.Gateway.BaseUri.ToString(), fx.Gateway.OperatorToken, args);

    private static void Succeeded(Processes.Result r) => Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\nstdout: {r.StdOut}\nstderr: {r.StdErr}");

    [Fact]
    public async Task Status_Json_ShowsUpstreamsAndPolicy()
    {
        var run = await AsOperatorAsync("status", "--json");
        Succeeded(run);
        using var doc = JsonDocument.Parse(run.StdOut);
        var upstream = Assert.Single(doc.RootElement.GetProperty("upstreams").EnumerateArray());
        Assert.Equal("workplace", upstream.GetProperty("name").GetString());
        Assert.Equal("up", upstream.GetProperty("state").GetString());
        Assert.NotEqual("none", doc.RootElement.GetProperty("policy").GetProperty("version").GetString());
    }

    [Fact]
    public async Task Agents_AddListRevoke_ThroughTheApi()
    {
        var add = await AsOperatorAsync("agents", "add", "cli-agent", "--group", "assistants", "--json");
        Succeeded(add);
        string token;
        using (var added = JsonDocument.Parse(add.StdOut))
        {
            token = added.RootElement.GetProperty("token").GetString()!;
            Assert.Equal("cli-agent", added.RootElement.GetProperty("name").GetString());
        }

        // The new token works at /mcp.
        var client = await fx.Gateway.ConnectAsync(token);
        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);

        var list = await AsOperatorAsync("agents", "list", "--json");
        Succeeded(list);
        using (var listed = JsonDocument.Parse(list.StdOut))
        {
            var agent = listed.RootElement.EnumerateArray().Single(a => a.GetProperty("name").GetString() == "cli-agent");
            Assert.Equal(["assistants"], agent.GetProperty("groups").EnumerateArray().Select(g => g.GetString()));
        }

        var again = await AsOperatorAsync("agents", "add", "cli-agent");
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("exists", again.StdErr);

        Succeeded(await AsOperatorAsync("agents", "revoke", "cli-agent"));
        var all = await AsOperatorAsync("agents", "list", "--all", "--json");
        Succeeded(all);
        using (var listed = JsonDocument.Parse(all.StdOut))
        {
            var agent = listed.RootElement.EnumerateArray().Single(a => a.GetProperty("name").GetString() == "cli-agent");
            Assert.Equal(JsonValueKind.String, agent.GetProperty("revokedAt").ValueKind);
        }

        await Wait.UntilAsync(
            async () =>
            {
                using var r = await fx.Gateway.PostMcpAsync(RawMcp.Initialize(), token);
                return r.StatusCode == HttpStatusCode.Unauthorized;
            },
            "the revoked token to be refused");
    }

    [Fact]
    public async Task Cli_AgentToken_IsRefusedByTheApi()
    {
        var run = await WardenAsync(fx.Gateway.BaseUri.ToString(), fx.Token, "agents", "add", "sneaky");
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("may not", run.StdErr);
    }

    [Fact]
    public async Task Cli_NoGatewayAnswers_StateChangingVerbsFailNamingTheUrl()
    {
        var url = "http://127.0.0.1:" + FreePort();
        foreach (var args in new[] { new[] { "agents", "add", "nobody" }, ["agents", "revoke", "nobody"], ["operators", "add", "nobody"], ["status"] })
        {
            var run = await WardenAsync(url, "wdn_operator_whatever", args);
            Assert.True(run.ExitCode != 0, string.Join(' ', args) + " succeeded");
            Assert.Contains(url, run.StdErr);
            Assert.Contains("no Warden gateway answers", run.StdErr);
        }
    }

    [Fact]
    public async Task Stdio_BridgeToTheGateway_ListsAndCallsTools()
    {
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "warden-stdio",
            Command = "dotnet",
            Arguments = [Repo.WardenDll, "stdio", "--connect", fx.Gateway.McpUri.ToString(), "--token", fx.Token],
            EnvironmentVariables = new Dictionary<string, string?> { ["WARDEN_CREDENTIALS"] = fx.Temp.File("credentials.json") },
            ShutdownTimeout = TimeSpan.FromSeconds(5),
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var client = await McpClient.CreateAsync(transport, cancellationToken: timeout.Token);
        Assert.Equal("warden", client.ServerInfo?.Name);

        var tools = (await client.ToolsAsync()).Select(t => t.Name).ToList();
        Assert.Contains("workplace__list_mail", tools);
        var result = await client.CallAsync("workplace__read_mail", new { id = "mail-004" });
        Assert.NotEqual(true, result.IsError);
        Assert.Equal("mail-004", result.Json().GetProperty("id").GetString());

        // The bridge adds nothing of its own: the gateway sees the agent's session.
        var sessions = (await fx.Gateway.StatusAsync())["sessions"]!.AsArray();
        Assert.Contains(sessions, s => s!["agent"]!.GetValue<string>() == "cli-bridge-agent");
    }

    [Fact]
    public async Task Stdio_NoGatewayAnswers_FailsClearly()
    {
        var url = "http://127.0.0.1:" + FreePort() + "/mcp";
        var run = await WardenAsync(null, null, "stdio", "--connect", url, "--token", "wdn_agent_x");
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains(url, run.StdErr);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
