using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Client;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>The example workplace policy (examples/policies/workplace) enforced by a live gateway.</summary>
[Trait("Category", "E2E")]
public sealed class PolicyTests(PolicyTests.Fixture fx) : IClassFixture<PolicyTests.Fixture>
{
    public sealed class Fixture : GatewayFixture
    {
        public string WorkplaceData { get; private set; } = "";

        public string Assistant { get; private set; } = "";

        public string Outsider { get; private set; } = "";

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            WorkplaceData = temp.Sub("workplace");
            var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", WorkplaceData), policy: await File.ReadAllTextAsync(Repo.WorkplacePolicy), temp: temp);
            Assistant = await gateway.AddAgentAsync("inbox-helper", "assistants");
            Outsider = await gateway.AddAgentAsync("outsider");
            return gateway;
        }
    }

    private List<string> Logged() => TestUpstreams.LoggedTools(fx.WorkplaceData);

    [Fact]
    public async Task CallTool_AllowedByRule_IsForwardedAndReachesTheUpstream()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Assistant);
        var before = Logged().Count(t => t == "read_mail");
        var result = await client.CallAsync("workplace__read_mail", new { id = "mail-003" });
        Assert.NotEqual(true, result.IsError);
        Assert.Equal("mail-003", result.Json().GetProperty("id").GetString());

        // The log line is flushed before the answer is sent.
        var lines = TestUpstreams.OperationsLog(fx.WorkplaceData).Where(o => o["tool"]!.GetValue<string>() == "read_mail").ToList();
        Assert.Equal(before + 1, lines.Count);
        Assert.Equal("mail-003", lines[^1]["arguments"]!["id"]!.GetValue<string>());
    }

    [Fact]
    public async Task CallTool_NoRuleAllows_IsDeniedWithTheRuleAndNeverReachesTheUpstream()
    {
        // update_record is allowed only to the assistants group; for anyone else the default (deny) decides.
        var client = await fx.Gateway.ConnectAsync(fx.Outsider);
        var result = await client.CallAsync("workplace__update_record", new { table = "tickets", id = "tick-1", fields = new { status = "closed" } });
        Assert.True(result.IsError);
        Assert.StartsWith("denied by rule default", result.Text(), StringComparison.Ordinal);

        // The same call from an assistant goes through: the denial was the policy's, not the upstream's.
        var assistant = await fx.Gateway.ConnectAsync(fx.Assistant);
        Assert.NotEqual(true, (await assistant.CallAsync("workplace__update_record", new { table = "tickets", id = "tick-2", fields = new { status = "open" } })).IsError);
        var updates = TestUpstreams.OperationsLog(fx.WorkplaceData).Where(o => o["tool"]!.GetValue<string>() == "update_record").ToList();
        Assert.DoesNotContain(updates, o => o["arguments"]!["id"]!.GetValue<string>() == "tick-1");
        Assert.Contains(updates, o => o["arguments"]!["id"]!.GetValue<string>() == "tick-2");
    }

    [Fact]
    public async Task CallTool_RuleAsksForApproval_IsHeldAndNeverReachesTheUpstreamUntilDecided()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Assistant);

        // Held: the call waits for a person; here the agent gives up, which withdraws the approval.
        using (var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.CallAsync("workplace__send_mail", new { to = new[] { "someone@outside.example" }, subject = "hi", body = "leak" }, giveUp.Token));
        }

        using (var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.CallAsync("workplace__delete_mail", new { ids = new[] { "mail-010", "mail-011", "mail-012", "mail-013", "mail-014", "mail-015" } }, giveUp.Token));
        }

        var approvals = await fx.Gateway.ApprovalsAsync();
        Assert.Contains(approvals, a => a["rule"]!.GetValue<string>() == "posting-needs-a-human" && a["tool"]!.GetValue<string>() == "send_mail");
        Assert.Contains(approvals, a => a["rule"]!.GetValue<string>() == "bulk-delete-needs-a-human" && a["tool"]!.GetValue<string>() == "delete_mail");
        Assert.DoesNotContain("send_mail", Logged());
        Assert.DoesNotContain(TestUpstreams.OperationsLog(fx.WorkplaceData), o => o["tool"]!.GetValue<string>() == "delete_mail" && o["arguments"]!["ids"]!.AsArray().Count == 6);

        // A small deletion is allowed by its own rule and happens.
        var single = await client.CallAsync("workplace__delete_mail", new { ids = new[] { "mail-020" } });
        Assert.NotEqual(true, single.IsError);
        Assert.Contains(TestUpstreams.OperationsLog(fx.WorkplaceData), o => o["tool"]!.GetValue<string>() == "delete_mail" && o["arguments"]!["ids"]![0]!.GetValue<string>() == "mail-020");
    }
}

/// <summary>Policy loading and reloading: each test runs its own gateway because it changes the policy file.</summary>
[Trait("Category", "E2E")]
public sealed class PolicyReloadTests
{
    private const string DenyListMail = """

          - id: no-listing
            description: added by the hot-reload test
            match: { server: workplace, tool: list_mail }
            effect: deny
        """;

    [Fact]
    public async Task CallTool_NoValidPolicyAtStart_EveryCallIsRefused()
    {
        using var temp = new TempDir();
        var data = temp.Sub("workplace");
        await using var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", data), policy: "version: 1\nrules: [ {id: broken", temp: temp);
        var token = await gateway.AddAgentAsync("inbox-helper", "assistants");
        var client = await gateway.ConnectAsync(token);

        foreach (var tool in new[] { "workplace__list_mail", "workplace__read_mail", "workplace__slow_operation" })
        {
            var result = await client.CallAsync(tool, new { id = "mail-001", seconds = 0 });
            Assert.True(result.IsError, tool);
            Assert.Contains("no valid policy", result.Text());
        }

        Assert.Empty(TestUpstreams.OperationsLog(data));
        var status = await gateway.StatusAsync();
        Assert.Equal("none", status["policy"]!["version"]!.GetValue<string>());
        Assert.NotEmpty(status["policy"]!["rejectedProblems"]!.AsArray());
    }

    [Fact]
    public async Task ReloadPolicy_BrokenFile_KeepsTheLastGoodPolicyAndStatusShowsTheRejection()
    {
        using var temp = new TempDir();
        var data = temp.Sub("workplace");
        await using var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", data), policy: await File.ReadAllTextAsync(Repo.WorkplacePolicy), temp: temp);
        var token = await gateway.AddAgentAsync("inbox-helper", "assistants");
        var good = (await gateway.StatusAsync())["policy"]!["version"]!.GetValue<string>();
        Assert.NotEqual("none", good);

        await File.WriteAllTextAsync(gateway.PolicyPath!, "version: 1\ndefault: allow\nrules:\n  - id: x\n    effect: maybe\n");
        using var response = await gateway.ApiAsync(HttpMethod.Post, "policy/reload", gateway.OperatorToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reload = (await response.Content.ReadFromJsonAsync<JsonNode>())!;
        Assert.False(reload["loaded"]!.GetValue<bool>());
        Assert.NotEmpty(reload["errors"]!.AsArray());

        var policy = (await gateway.StatusAsync())["policy"]!;
        Assert.Equal(good, policy["version"]!.GetValue<string>());
        Assert.NotNull(policy["rejectedAt"]);
        Assert.NotEmpty(policy["rejectedProblems"]!.AsArray());

        // The last good policy still decides: reads allowed, the broken file's "default: allow" not in force.
        var client = await gateway.ConnectAsync(token);
        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);
        // The good policy holds a send for a person (the broken one would have allowed it): the agent gives up waiting.
        using (var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.CallAsync("workplace__send_mail", new { to = new[] { "a@corp.example" }, subject = "s", body = "b" }, giveUp.Token));
        }

        Assert.DoesNotContain("send_mail", TestUpstreams.LoggedTools(data));
    }

    [Fact]
    public async Task PolicyFile_OtherFilesInItsFolderChanging_DoNotReloadIt()
    {
        // The policy file's folder may also hold the data folder or other busy files; only the policy file counts.
        using var temp = new TempDir();
        await using var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", temp.Sub("workplace")), policy: "version: 1\ndefault: allow\n", temp: temp);
        var loadedAt = (await gateway.StatusAsync())["policy"]!["loadedAt"]!.GetValue<DateTimeOffset>();
        var folder = Path.GetDirectoryName(gateway.PolicyPath!)!;
        for (var i = 0; i < 5; i++)
        {
            await File.WriteAllTextAsync(Path.Combine(folder, "busy.log"), new string('x', i * 100));
            await Task.Delay(100);
        }

        // Past the watcher's 200 ms quiet period, then a change to the policy itself as the control: it does reload.
        await Task.Delay(600);
        Assert.Equal(loadedAt, (await gateway.StatusAsync())["policy"]!["loadedAt"]!.GetValue<DateTimeOffset>());
        await File.AppendAllTextAsync(gateway.PolicyPath!, "# touched\n");
        await Wait.UntilAsync(async () => (await gateway.StatusAsync())["policy"]!["loadedAt"]!.GetValue<DateTimeOffset>() != loadedAt, "the watcher to reload the touched policy");
    }

    [Fact]
    public async Task Host_WatchesNoConfigurationFiles()
    {
        // ASP.NET Core's default appsettings.json reload watches the content root (warden.yaml's folder, usually
        // holding the data folder) recursively: every SQLite write would wake a watcher thread.
        using var temp = new TempDir();
        await using var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", temp.Sub("workplace")), policy: "version: 1\ndefault: allow\n", temp: temp);
        var root = (Microsoft.Extensions.Configuration.IConfigurationRoot)gateway.App.Services.GetRequiredService<Microsoft.Extensions.Configuration.IConfiguration>();
        Assert.DoesNotContain(root.Providers, p => p is Microsoft.Extensions.Configuration.FileConfigurationProvider f && f.Source.ReloadOnChange);
    }

    [Fact]
    public async Task PolicyFile_ChangedOnDisk_ReloadsAndTakesEffect()
    {
        using var temp = new TempDir();
        var data = temp.Sub("workplace");
        var text = await File.ReadAllTextAsync(Repo.WorkplacePolicy);
        await using var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", data), policy: text, temp: temp);
        var token = await gateway.AddAgentAsync("inbox-helper", "assistants");
        var client = await gateway.ConnectAsync(token);
        Assert.NotEqual(true, (await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError);
        var before = (await gateway.StatusAsync())["policy"]!["version"]!.GetValue<string>();

        await File.WriteAllTextAsync(gateway.PolicyPath!, text.TrimEnd() + "\n" + DenyListMail + "\n");
        await Wait.UntilAsync(async () => (await gateway.StatusAsync())["policy"]!["version"]!.GetValue<string>() != before, "the watcher to load the changed policy");

        var listedBefore = TestUpstreams.LoggedTools(data).Count(t => t == "list_mail");
        var denied = await client.CallAsync("workplace__list_mail", new { limit = 1 });
        Assert.True(denied.IsError);
        Assert.StartsWith("denied by rule no-listing", denied.Text(), StringComparison.Ordinal);
        Assert.Equal(listedBefore, TestUpstreams.LoggedTools(data).Count(t => t == "list_mail"));

        // Other rules are untouched.
        Assert.NotEqual(true, (await client.CallAsync("workplace__read_mail", new { id = "mail-001" })).IsError);
    }
}
