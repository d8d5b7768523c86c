using System.Net;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Warden.Stops.E2E.Tests;

/// <summary>Issue 6, acceptance 5 to 7: who may stop, limits through the gateway, and the CLI.</summary>
public sealed class ApiAndLimitTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Only_operators_stop_and_resume_and_a_resume_needs_a_reason()
    {
        await using var site = await Site.CreateAsync(Site.Policy(), slowMs: 0);
        var url = Site.Url(await site.StartGatewayAsync());
        foreach (var token in new[] { site.AgentToken, site.ApproverToken })
        {
            using var api = new Api(url, token);
            Assert.Equal(HttpStatusCode.Forbidden, (await api.SendAsync(HttpMethod.Post, "stops", new { scope = "agent", target = Site.Agent, reason = "x" })).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await api.SendAsync(HttpMethod.Post, "stops/resume", new { scope = "agent", target = Site.Agent, reason = "x" })).Status);
            Assert.Equal(HttpStatusCode.Forbidden, (await api.SendAsync(HttpMethod.Get, "stops")).Status);
        }

        using var none = new Api(url, "wrd_not_a_token");
        Assert.Equal(HttpStatusCode.Unauthorized, (await none.SendAsync(HttpMethod.Post, "stops", new { scope = "all", reason = "x" })).Status);

        using var ops = new Api(url, site.OperatorToken);
        Assert.Empty(await ops.ListAsync());
        await ops.StopAgentAsync(Site.Agent, "auth test");
        var (status, body) = await ops.SendAsync(HttpMethod.Post, "stops/resume", new { scope = "agent", target = Site.Agent, reason = "" });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("reason", body!.ToJsonString());
        (status, body) = await ops.SendAsync(HttpMethod.Post, "stops/resume", new { scope = "agent", target = Site.Agent });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Single(await ops.ListAsync());
        (status, _) = await ops.SendAsync(HttpMethod.Post, "stops/resume", new { scope = "agent", target = Site.Agent, reason = "done" });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Empty(await ops.ListAsync());
    }

    [Fact]
    public async Task A_rate_limit_refuses_with_its_message()
    {
        await using var site = await Site.CreateAsync(Site.Policy(limits: "  - {id: list-rate, match: {tool: list_mail}, rate: 3 per hour}\n"), slowMs: 0);
        var url = Site.Url(await site.StartGatewayAsync());
        await using var agent = await Agents.ConnectAsync(url, site.AgentToken);
        for (var i = 0; i < 3; i++)
        {
            var ok = await agent.CallAsync("workplace__list_mail", new { limit = 1 });
            Assert.False(ok.IsError == true, ok.Text());
        }

        var refused = await agent.CallAsync("workplace__list_mail", new { limit = 1 });
        Assert.True(refused.IsError);
        Assert.Contains("limit list-rate exceeded (3 per 1 h per agent)", refused.Text());

        // Another agent has its own count.
        await using var other = await Agents.ConnectAsync(url, site.OtherAgentToken);
        Assert.False((await other.CallAsync("workplace__list_mail", new { limit = 1 })).IsError == true);
    }

    [Fact]
    public async Task A_concurrency_cap_refuses_calls_beyond_it_while_they_run()
    {
        await using var site = await Site.CreateAsync(Site.Policy(limits: "  - {id: one-at-a-time, match: {tool: slow_operation}, concurrency: 2}\n"), slowMs: 0);
        var url = Site.Url(await site.StartGatewayAsync());
        await using var agent = await Agents.ConnectAsync(url, site.AgentToken);
        await Agents.WarmAsync(agent);
        using var ops = new Api(url, site.OperatorToken);

        // Two slow calls hold the cap; a third is refused at once; after they finish, calls run again.
        // The probe waits until the gateway reports both slow calls admitted: started together, the three
        // requests reach the gateway in any order, and a probe admitted first takes a slot from a slow call
        // (CI saw exactly that: the second slow call refused, every later probe admitted).
        var slow = Enumerable.Range(0, 2).Select(_ => agent.CallAsync("workplace__slow_operation", new { seconds = 8, steps = 8 })).ToList();
        var level = -1.0;
        Assert.True(await Wait.UntilAsync(async () => (level = await InFlightAsync(ops, "one-at-a-time")) >= 2, TimeSpan.FromSeconds(30)), $"the two slow calls were not both admitted (level {level})");

        var refused = await agent.CallAsync("workplace__slow_operation", new { seconds = 0, steps = 1 });
        output.WriteLine($"probe: error={refused.IsError} {refused.Text()}");
        Assert.True(refused.IsError, "a probe was admitted while two slow calls held the cap");
        Assert.Contains("limit one-at-a-time exceeded (at most 2 at once per agent)", refused.Text());
        foreach (var s in slow)
        {
            var done = await s;
            output.WriteLine($"slow: error={done.IsError} {done.Text()}");
            Assert.False(done.IsError == true, done.Text());
        }

        // Every slot is handed back when its call ends: the level is 0, and calls run again.
        Assert.Equal(0, await InFlightAsync(ops, "one-at-a-time"));
        var after = await agent.CallAsync("workplace__slow_operation", new { seconds = 0, steps = 1 });
        Assert.False(after.IsError == true, after.Text());
    }

    /// <summary>The agent's current level of a limit, as the status API reports it.</summary>
    private static async Task<double> InFlightAsync(Api ops, string limit)
    {
        var (status, body) = await ops.SendAsync(HttpMethod.Get, "agents");
        Assert.Equal(HttpStatusCode.OK, status);
        var agent = body!.AsArray().Single(a => (string?)a!["name"] == Site.Agent)!;
        var level = agent["status"]?["limits"]?.AsArray().SingleOrDefault(l => (string?)l!["id"] == limit);
        return level is null ? 0 : (double)level["used"]!;
    }

    [Fact]
    public async Task Two_sessions_of_one_agent_share_a_per_agent_budget_but_not_a_per_session_one()
    {
        await using var site = await Site.CreateAsync(Site.Policy(limits: """
              - {id: agent-budget, match: {tool: list_mail}, budget: 4 per day}
              - {id: session-budget, match: {tool: read_mail}, budget: 2 per day, per: session}

            """), slowMs: 0);
        var url = Site.Url(await site.StartGatewayAsync());
        await using var one = await Agents.ConnectAsync(url, site.AgentToken);
        await using var two = await Agents.ConnectAsync(url, site.AgentToken);

        // Per agent: 4 in all, whichever session spends them.
        var results = new List<bool>();
        foreach (var client in new[] { one, two, one, two, one, two })
        {
            results.Add((await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError != true);
        }

        Assert.Equal([true, true, true, true, false, false], results);
        var denied = await two.CallAsync("workplace__list_mail", new { limit = 1 });
        Assert.Contains("limit agent-budget exceeded (4 per 1 d per agent)", denied.Text());

        // Per session: 2 each.
        foreach (var client in new[] { one, two })
        {
            Assert.False((await client.CallAsync("workplace__read_mail", new { id = "mail-001" })).IsError == true);
            Assert.False((await client.CallAsync("workplace__read_mail", new { id = "mail-001" })).IsError == true);
            var third = await client.CallAsync("workplace__read_mail", new { id = "mail-001" });
            Assert.True(third.IsError);
            Assert.Contains("limit session-budget exceeded (2 per 1 d per session)", third.Text());
        }
    }

    [Fact]
    public async Task The_cli_stops_lists_and_resumes_against_a_live_gateway()
    {
        await using var site = await Site.CreateAsync(Site.Policy(), slowMs: 0);
        var url = Site.Url(await site.StartGatewayAsync());
        await using var agent = await Agents.ConnectAsync(url, site.AgentToken);
        var env = new Dictionary<string, string> { ["WARDEN_URL"] = url, ["WARDEN_TOKEN"] = site.OperatorToken };

        var (exit, text) = await Child.RunAsync(site.Root, env, "stop", "--agent", Site.Agent, "--reason", "cli says stop");
        output.WriteLine(text);
        Assert.True(exit == 0, text);
        Assert.Contains("agent:" + Site.Agent + " stopped", text);
        var call = await agent.CallAsync("workplace__list_mail", new { limit = 1 });
        Assert.True(call.IsError);
        Assert.Contains("stopped by ops at", call.Text());
        Assert.Contains("cli says stop", call.Text());

        (exit, text) = await Child.RunAsync(site.Root, env, "stops", "--json");
        output.WriteLine(text);
        Assert.True(exit == 0, text);
        var list = JsonNode.Parse(text)!.AsArray();
        var stop = Assert.Single(list);
        Assert.Equal(Site.Agent, (string?)stop!["target"]);
        Assert.Equal("cli says stop", (string?)stop["reason"]);
        Assert.Equal("ops", (string?)stop["by"]);

        // Without a reason the CLI refuses; an agent's token is refused by the gateway.
        (exit, text) = await Child.RunAsync(site.Root, env, "resume", "--agent", Site.Agent);
        Assert.NotEqual(0, exit);
        (exit, text) = await Child.RunAsync(site.Root, new Dictionary<string, string> { ["WARDEN_URL"] = url, ["WARDEN_TOKEN"] = site.AgentToken }, "resume", "--agent", Site.Agent, "--reason", "me");
        Assert.NotEqual(0, exit);

        // Credentials from a file (WARDEN_CREDENTIALS) work as well as the environment.
        var credentials = Path.Combine(site.Root, "creds.json");
        await File.WriteAllTextAsync(credentials, new JsonObject { ["url"] = url, ["token"] = site.OperatorToken }.ToJsonString());
        (exit, text) = await Child.RunAsync(site.Root, new Dictionary<string, string> { ["WARDEN_CREDENTIALS"] = credentials }, "resume", "--agent", Site.Agent, "--reason", "false alarm");
        output.WriteLine(text);
        Assert.True(exit == 0, text);
        Assert.Contains("resumed", text);
        var again = await agent.CallAsync("workplace__list_mail", new { limit = 1 });
        Assert.False(again.IsError == true, again.Text());
    }
}
