using System.Diagnostics;
using System.Net;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>
/// Malformed, hostile or unlucky requests: each gets a clear refusal, never a crash, and a normal call
/// works right after. The gateway also fronts an upstream that never starts.
/// </summary>
[Trait("Category", "E2E")]
public sealed class BadInputTests(BadInputTests.Fixture fx) : IClassFixture<BadInputTests.Fixture>
{
    public sealed class Fixture : GatewayFixture
    {
        public string WorkplaceData { get; private set; } = "";

        public string Token { get; private set; } = "";

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            WorkplaceData = temp.Sub("workplace");
            var servers = TestUpstreams.Workplace("workplace", WorkplaceData) +
                "  broken:\n    command: [\"dotnet\", \"" + temp.File("no-such-server.dll") + "\"]\n    connect_timeout: 5s\n";
            var gateway = await WardenGateway.StartAsync(servers, extraYaml: "mcp:\n  max_request_bytes: 2048", waitForUpstreams: false, temp: temp);
            await Wait.UntilAsync(async () => (await gateway.UpstreamStatusAsync("workplace"))["state"]!.GetValue<string>() == "up", "workplace to be up", TimeSpan.FromSeconds(60));
            Token = await gateway.AddAgentAsync("bad-input-agent");
            return gateway;
        }
    }

    private WardenGateway Gateway => fx.Gateway;

    private async Task NormalCallStillWorksAsync()
    {
        var client = await Gateway.ConnectAsync(fx.Token);
        var result = await client.CallAsync("workplace__list_mail", new { limit = 1 });
        Assert.NotEqual(true, result.IsError);
    }

    [Fact]
    public async Task Mcp_MalformedJsonRpc_IsRefusedWithoutCrash()
    {
        var session = await Gateway.OpenRawSessionAsync(fx.Token);
        foreach (var body in new[] { """{"jsonrpc":"2.0","id":5}""", """{"foo":"bar"}""", """[1,2,3]""", """{"jsonrpc":"2.0","id":6,"method":42}""", "" })
        {
            using var response = await Gateway.PostMcpAsync(body, fx.Token, session);
            var code = (int)response.StatusCode;
            Assert.True(code is >= 400 and < 500, $"'{body}' got {code}");
        }

        await NormalCallStillWorksAsync();
    }

    [Fact]
    public async Task Mcp_NonJsonBody_Is400()
    {
        var session = await Gateway.OpenRawSessionAsync(fx.Token);
        using var response = await Gateway.PostMcpAsync("this is not json {", fx.Token, session);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);

        using var noSession = await Gateway.PostMcpAsync("<xml/>", fx.Token);
        Assert.Equal(HttpStatusCode.BadRequest, noSession.StatusCode);
        await NormalCallStillWorksAsync();
    }

    [Fact]
    public async Task Mcp_BodyOverTheConfiguredLimit_Is413AndNeverReachesTheUpstream()
    {
        var session = await Gateway.OpenRawSessionAsync(fx.Token);
        var huge = new string('x', 4096);
        using var response = await Gateway.PostMcpAsync(RawMcp.CallTool("workplace__read_mail", new { id = huge }), fx.Token, session);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.DoesNotContain(TestUpstreams.OperationsLog(fx.WorkplaceData), o => o["arguments"]?.ToJsonString().Contains(huge, StringComparison.Ordinal) == true);
        await NormalCallStillWorksAsync();
    }

    [Fact]
    public async Task Mcp_UnknownMethod_IsMethodNotFound()
    {
        var client = await Gateway.ConnectAsync(fx.Token);
        using var timeout = new CancellationTokenSource(McpTest.CallTimeout);
        var ex = await Assert.ThrowsAsync<McpProtocolException>(() => client.SendRequestAsync(new JsonRpcRequest { Method = "warden/no-such-method" }, timeout.Token));
        Assert.Equal(McpErrorCode.MethodNotFound, ex.ErrorCode);
        await NormalCallStillWorksAsync();
    }

    [Fact]
    public async Task CallTool_UnknownToolOrServer_IsAJsonRpcErrorNotACrash()
    {
        var client = await Gateway.ConnectAsync(fx.Token);
        foreach (var name in new[] { "workplace__nope", "nowhere__list_mail", "", "__", "workplace__" })
        {
            var ex = await Assert.ThrowsAsync<McpProtocolException>(() => client.CallAsync(name));
            Assert.Equal(McpErrorCode.InvalidParams, ex.ErrorCode);
        }

        await NormalCallStillWorksAsync();
    }

    [Fact]
    public async Task CallTool_UpstreamThatIsDown_FailsPromptlyWithAClearError()
    {
        var client = await Gateway.ConnectAsync(fx.Token);

        // The broken upstream never came up, so it lists no tools, but its name is known.
        Assert.DoesNotContain((await client.ToolsAsync()).Select(t => t.Name), n => n.StartsWith("broken__", StringComparison.Ordinal));
        await Wait.UntilAsync(async () => (await Gateway.UpstreamStatusAsync("broken"))["state"]!.GetValue<string>() == "down", "the broken upstream to be down");

        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<McpProtocolException>(() => client.CallAsync("broken__anything"));
        watch.Stop();
        Assert.Contains("upstream server 'broken' is unavailable", ex.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");

        var status = await Gateway.UpstreamStatusAsync("broken");
        Assert.False(string.IsNullOrEmpty(status["lastError"]?.GetValue<string>()));
        await NormalCallStillWorksAsync();
    }
}

/// <summary>An upstream that dies in the middle of a call: its own gateway, since it is killed.</summary>
[Trait("Category", "E2E")]
public sealed class UpstreamCrashTests
{
    [Fact]
    public async Task CallTool_UpstreamKilledMidCall_CallFailsStatusShowsRestartAndLaterCallsWork()
    {
        using var temp = new TempDir();
        var data = temp.Sub("workplace-crash");
        await using var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", data), temp: temp);
        var token = await gateway.AddAgentAsync("crash-agent");
        var client = await gateway.ConnectAsync(token);

        var progress = new ProgressLog();
        using var timeout = new CancellationTokenSource(McpTest.CallTimeout);
        var call = client.CallToolAsync("workplace__slow_operation", new Dictionary<string, object?> { ["seconds"] = 120, ["steps"] = 240 }, progress, cancellationToken: timeout.Token).AsTask();
        await Wait.UntilAsync(() => progress.Values.Count > 0, "the slow operation to start");

        var pids = Processes.FindByCommandLine(data);
        Assert.Single(pids);
        var states = new List<string>();
        var watcher = Task.Run(async () =>
        {
            // Record what status reports while the upstream is away and back.
            while (!timeout.IsCancellationRequested)
            {
                var u = await gateway.UpstreamStatusAsync("workplace");
                var state = u["state"]!.GetValue<string>();
                lock (states)
                {
                    states.Add(state);
                }

                if (state == "up" && u["restarts"]!.GetValue<int>() > 0)
                {
                    return;
                }

                await Task.Delay(10);
            }
        });
        Processes.Kill(pids[0]);

        // The call fails with an error instead of hanging until the call timeout.
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => call);
        Assert.IsNotType<OperationCanceledException>(ex);
        Assert.Contains("workplace", ex.Message);

        await watcher.WaitAsync(TimeSpan.FromSeconds(60));
        lock (states)
        {
            // The down/restarting state can be shorter than one status poll; the restart counter and the new
            // child's pid below prove the restart, and the last state seen must be up again.
            Assert.Equal("up", states[^1]);
        }

        var after = await gateway.UpstreamStatusAsync("workplace");
        Assert.True(after["restarts"]!.GetValue<int>() >= 1);
        Assert.NotEqual(pids[0], Assert.Single(Processes.FindByCommandLine(data)));

        // Later calls work, on the same agent session and on a new one.
        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);
        var fresh = await gateway.ConnectAsync(token);
        Assert.NotEqual(true, (await fresh.CallAsync("workplace__read_mail", new { id = "mail-001" })).IsError);
    }

    [Fact]
    public async Task Dispose_Gateway_LeavesNoUpstreamProcessBehind()
    {
        using var temp = new TempDir();
        var data = temp.Sub("workplace-orphan");
        var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", data), temp: temp);
        Assert.Single(Processes.FindByCommandLine(data));
        await gateway.DisposeAsync();
        await Wait.UntilAsync(() => Processes.FindByCommandLine(data).Count == 0, "the upstream child to exit", TimeSpan.FromSeconds(15));
    }
}
