using System.Net;
using ModelContextProtocol.Client;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>Who may reach /mcp and /api/v1, and from where (bearer tokens, Host and Origin checks).</summary>
[Trait("Category", "E2E")]
public sealed class AuthenticationTests(AuthenticationTests.Fixture fx) : IClassFixture<AuthenticationTests.Fixture>
{
    public sealed class Fixture : GatewayFixture
    {
        public string WorkplaceData { get; private set; } = "";

        public string Token { get; private set; } = "";

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            WorkplaceData = temp.Sub("workplace");
            var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", WorkplaceData), temp: temp);
            Token = await gateway.AddAgentAsync("auth-agent");
            return gateway;
        }
    }

    private WardenGateway Gateway => fx.Gateway;

    [Fact]
    public async Task Mcp_NoToken_Is401WithWwwAuthenticate()
    {
        using var response = await Gateway.PostMcpAsync(RawMcp.Initialize(), token: null);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
    }

    [Fact]
    public async Task Mcp_WrongToken_Is401()
    {
        using var wrong = await Gateway.PostMcpAsync(RawMcp.Initialize(), token: "wdn_agent_not-a-real-token");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);

        using var notBearer = await Gateway.PostMcpAsync(RawMcp.Initialize(), token: null, configure: r => r.Headers.TryAddWithoutValidation("Authorization", "Basic " + Gateway.OperatorToken));
        Assert.Equal(HttpStatusCode.Unauthorized, notBearer.StatusCode);

        await Assert.ThrowsAnyAsync<Exception>(() => Gateway.ConnectAsync("wdn_agent_not-a-real-token"));
    }

    [Fact]
    public async Task Mcp_ValidTokenFromForeignHostOrOrigin_Is403AndNeverReachesTheUpstream()
    {
        var session = await Gateway.OpenRawSessionAsync(fx.Token);

        using var init = await Gateway.PostMcpAsync(RawMcp.Initialize(), fx.Token, configure: r => r.Headers.Host = "evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, init.StatusCode);

        using var byHost = await Gateway.PostMcpAsync(RawMcp.CallTool("workplace__read_mail", new { id = "mail-041" }), fx.Token, session, r => r.Headers.Host = "evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, byHost.StatusCode);

        using var byOrigin = await Gateway.PostMcpAsync(RawMcp.CallTool("workplace__read_mail", new { id = "mail-042" }), fx.Token, session, r => r.Headers.Add("Origin", "http://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, byOrigin.StatusCode);

        // The same call from this machine is served, and only it reaches the upstream.
        using var ok = await Gateway.PostMcpAsync(RawMcp.CallTool("workplace__read_mail", new { id = "mail-043" }), fx.Token, session, r => r.Headers.Add("Origin", Gateway.BaseUri.GetLeftPart(UriPartial.Authority)));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var answer = Assert.Single(await RawMcp.MessagesAsync(ok), m => m["id"] is not null);
        Assert.Contains("mail-043", answer["result"]!.ToJsonString());

        var ids = TestUpstreams.OperationsLog(fx.WorkplaceData).Where(o => o["tool"]!.GetValue<string>() == "read_mail").Select(o => o["arguments"]!["id"]!.GetValue<string>()).ToList();
        Assert.Contains("mail-043", ids);
        Assert.DoesNotContain("mail-041", ids);
        Assert.DoesNotContain("mail-042", ids);
    }

    [Fact]
    public async Task Mcp_LocalhostHost_Is200()
    {
        using var response = await Gateway.PostMcpAsync(RawMcp.Initialize(), fx.Token, configure: r => r.Headers.Host = "localhost:" + Gateway.BaseUri.Port);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(response.Headers.Contains("Mcp-Session-Id"));
    }

    [Fact]
    public async Task Mcp_OperatorToken_Is403()
    {
        using var response = await Gateway.PostMcpAsync(RawMcp.Initialize(), Gateway.OperatorToken);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    [Fact]
    public async Task Mcp_RevokedAgentToken_StopsWorking()
    {
        var token = await Gateway.AddAgentAsync("soon-revoked");
        var client = await Gateway.ConnectAsync(token);
        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);

        using (var revoke = await Gateway.ApiAsync(HttpMethod.Delete, "agents/soon-revoked", Gateway.OperatorToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        // The token cache follows the store's change feed: wait for it rather than guess its interval.
        await Wait.UntilAsync(
            async () =>
            {
                using var r = await Gateway.PostMcpAsync(RawMcp.Initialize(), token);
                return r.StatusCode == HttpStatusCode.Unauthorized;
            },
            "the revoked token to be refused");

        // The session opened before the revocation is refused too.
        await Assert.ThrowsAnyAsync<Exception>(() => client.CallAsync("workplace__list_mail", new { limit = 1 }));
        await Assert.ThrowsAnyAsync<Exception>(() => Gateway.ConnectAsync(token));
    }

    [Fact]
    public async Task Api_AgentToken_IsRefused()
    {
        foreach (var (method, path) in new[] { (HttpMethod.Get, "status"), (HttpMethod.Get, "agents"), (HttpMethod.Post, "agents"), (HttpMethod.Post, "policy/reload"), (HttpMethod.Delete, "agents/auth-agent") })
        {
            using var response = await Gateway.ApiAsync(method, path, fx.Token, method == HttpMethod.Post ? new { name = "sneaky" } : null);
            Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{method} {path}: {(int)response.StatusCode}");
        }

        using var anonymous = await Gateway.ApiAsync(HttpMethod.Get, "status", token: null);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        // Still an agent, still working.
        var client = await Gateway.ConnectAsync(fx.Token);
        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);
    }
}

/// <summary>The anonymous agent: for conformance runs on loopback only.</summary>
[Trait("Category", "E2E")]
public sealed class AnonymousAgentTests
{
    [Fact]
    public async Task Mcp_AnonymousAgentOnLoopback_WorksWithoutToken()
    {
        using var temp = new TempDir();
        var data = temp.Sub("workplace");
        await using var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", data), extraYaml: "mcp:\n  anonymous_agent: conformance", temp: temp);
        var client = await gateway.ConnectAsync(token: null);
        Assert.Contains("workplace__list_mail", (await client.ToolsAsync()).Select(t => t.Name));
        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);

        var status = await gateway.StatusAsync();
        Assert.Contains(status["sessions"]!.AsArray(), s => s!["agent"]!.GetValue<string>() == "conformance");

        // A wrong token is still refused: anonymity applies only to requests without credentials.
        using var wrong = await gateway.PostMcpAsync(RawMcp.Initialize(), "wdn_agent_wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
    }

    [Theory]
    [InlineData("0.0.0.0:0")]
    [InlineData("[::]:0")]
    public void Build_AnonymousAgentOnNonLoopbackListener_IsRefused(string listen)
    {
        using var temp = new TempDir();
        var config = Configuration.ConfigLoader.Parse("listen: 127.0.0.1:8470\ndata_dir: ./data\nmcp:\n  anonymous_agent: conformance\n", "warden.yaml", temp.Path);
        var ex = Assert.Throws<InvalidOperationException>(() => GatewayHost.Build(config, new GatewayOptions { Listen = listen }));
        Assert.Contains("loopback", ex.Message);
    }
}
