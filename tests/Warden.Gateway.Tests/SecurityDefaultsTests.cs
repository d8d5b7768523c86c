using System.Text.Json;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>
/// Safe defaults: children get no inherited environment, same-named tools of two upstreams never replace
/// each other, and upstream credentials go upstream while the agent's token never does.
/// </summary>
[Trait("Category", "E2E")]
public sealed class SecurityDefaultsTests(SecurityDefaultsTests.Fixture fx) : IClassFixture<SecurityDefaultsTests.Fixture>
{
    internal const string Secret = "warden-test-secret-4711";
    internal const string UpstreamKey = "upstream-key-from-env-0815";

    public sealed class Fixture : GatewayFixture
    {
        public string DataA { get; private set; } = "";

        public string DataB { get; private set; } = "";

        public string Token { get; private set; } = "";

        internal HeaderRecordingServer? Recorder { get; private set; }

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            // In Warden's own environment: a child must not see it; the header may use it through ${...}.
            Environment.SetEnvironmentVariable("WARDEN_TEST_SECRET", Secret);
            Environment.SetEnvironmentVariable("WARDEN_TEST_UPSTREAM_KEY", UpstreamKey);
            Recorder = await HeaderRecordingServer.StartAsync();
            DataA = temp.Sub("a");
            DataB = temp.Sub("b");
            var servers =
                TestUpstreams.Everything("everything", "env:\n  WARDEN_TEST_GIVEN: given-by-config") +
                TestUpstreams.Workplace("a", DataA) +
                TestUpstreams.Workplace("b", DataB) +
                TestUpstreams.Http("recorder", Recorder.Url, "headers:\n  Authorization: \"Bearer upstream-secret\"\n  X-Upstream-Key: \"${WARDEN_TEST_UPSTREAM_KEY}\"");
            var gateway = await WardenGateway.StartAsync(servers, temp: temp);
            Token = await gateway.AddAgentAsync("security-agent");
            return gateway;
        }

        internal override async ValueTask StopExtrasAsync()
        {
            if (Recorder is not null)
            {
                await Recorder.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task StdioChild_DoesNotInheritWardensEnvironment_OnlyConfiguredVariables()
    {
        Assert.Equal(Secret, Environment.GetEnvironmentVariable("WARDEN_TEST_SECRET"));
        var client = await fx.Gateway.ConnectAsync(fx.Token);
        var result = await client.CallAsync("everything__get-env");
        Assert.NotEqual(true, result.IsError);
        var env = result.Json();

        Assert.False(env.TryGetProperty("WARDEN_TEST_SECRET", out _), "the child inherited WARDEN_TEST_SECRET");
        Assert.DoesNotContain(Secret, result.Text());
        Assert.False(env.TryGetProperty("WARDEN_TEST_UPSTREAM_KEY", out _));
        Assert.Equal("given-by-config", env.GetProperty("WARDEN_TEST_GIVEN").GetString());
        Assert.True(env.TryGetProperty("PATH", out _), "PATH is among the minimal defaults");

        // Far fewer variables than this process has.
        Assert.True(env.EnumerateObject().Count() < Environment.GetEnvironmentVariables().Count, "the child saw as many variables as Warden");
    }

    [Fact]
    public async Task SameToolNameOnTwoUpstreams_BothExistAndEachReachesItsOwnServer()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Token);
        var names = (await client.ToolsAsync()).Select(t => t.Name).ToList();
        Assert.Contains("a__list_mail", names);
        Assert.Contains("b__list_mail", names);
        Assert.Contains("a__delete_mail", names);
        Assert.Contains("b__delete_mail", names);
        Assert.Equal(names.Count, names.Distinct().Count());

        var deleted = await client.CallAsync("a__delete_mail", new { ids = new[] { "mail-007" } });
        Assert.NotEqual(true, deleted.IsError);

        Assert.Contains("delete_mail", TestUpstreams.LoggedTools(fx.DataA));
        Assert.DoesNotContain("delete_mail", TestUpstreams.LoggedTools(fx.DataB));

        var inA = await client.CallAsync("a__read_mail", new { id = "mail-007" });
        var inB = await client.CallAsync("b__read_mail", new { id = "mail-007" });
        Assert.True(inA.IsError, "mail-007 was deleted on a");
        Assert.NotEqual(true, inB.IsError);
        Assert.Equal("mail-007", inB.Json().GetProperty("id").GetString());
    }

    [Fact]
    public async Task HttpUpstream_GetsConfiguredHeaders_NeverTheAgentsToken()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Token);
        var result = await client.CallAsync("recorder__shout", new { text = "quiet" });
        Assert.NotEqual(true, result.IsError);
        Assert.Equal("QUIET", result.Text());

        var seen = fx.Recorder!.Requests.ToList();
        Assert.NotEmpty(seen);
        Assert.All(seen, headers =>
        {
            Assert.Equal("Bearer upstream-secret", headers.GetValueOrDefault("Authorization"));
            Assert.Equal(UpstreamKey, headers.GetValueOrDefault("X-Upstream-Key"));
            Assert.DoesNotContain(headers.Values, v => v.Contains(fx.Token, StringComparison.Ordinal));
            Assert.DoesNotContain(headers.Values, v => v.Contains(fx.Gateway.OperatorToken, StringComparison.Ordinal));
        });
    }

    [Fact]
    public async Task Status_ShowsEveryUpstreamUpWithItsTransport()
    {
        var upstreams = (await fx.Gateway.StatusAsync())["upstreams"]!.AsArray();
        Assert.Equal(["everything", "a", "b", "recorder"], upstreams.Select(u => u!["name"]!.GetValue<string>()));
        Assert.All(upstreams, u => Assert.Equal("up", u!["state"]!.GetValue<string>()));
        Assert.Equal("http", upstreams.Single(u => u!["name"]!.GetValue<string>() == "recorder")!["transport"]!.GetValue<string>());
        Assert.Equal("stdio", upstreams.Single(u => u!["name"]!.GetValue<string>() == "a")!["transport"]!.GetValue<string>());
        Assert.DoesNotContain("upstream-secret", upstreams.ToJsonString());
    }
}
