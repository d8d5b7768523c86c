using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using ModelContextProtocol.Protocol;
using Xunit.Abstractions;

namespace Warden.Web.Tests;

/// <summary>A gateway whose policy holds forum posts and mail for the team leads.</summary>
public sealed class ApprovalFixture : IAsyncLifetime
{
    public const string Poster = "forum-bot";
    public const string Mailer = "mail-bot";
    public const string Bulk = "bulk-bot";

    public static string Policy => $$"""
        version: 1
        default: deny
        agents:
          {{Poster}}: { groups: [assistants] }
          {{Mailer}}: { groups: [assistants] }
          {{Bulk}}: { groups: [assistants] }
        rules:
          - id: reads
            match: { class: read_only }
            effect: allow
          - id: slow
            match: { server: workplace, tool: slow_operation }
            effect: allow
          - id: posting-needs-a-human
            match: { server: workplace, tool: post_message }
            effect: ask
            message: posts are public; a team lead checks them
            approvers: [team-leads]
            timeout: 30m
            mode: hold
          - id: mail-needs-two
            match: { server: workplace, tool: send_mail }
            effect: ask
            message: mail leaves the company
            approvers: [team-leads]
            timeout: 30m
            mode: hold
            two_person: true
          - id: records-deferred
            match: { server: workplace, tool: update_record }
            effect: ask
            approvers: [team-leads]
            timeout: 2h
            mode: defer
        """;

    internal Site Site { get; private set; } = null!;

    internal Browser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Site = await Site.StartAsync(Policy, [Poster, Mailer, Bulk]);
        Browser = await Browser.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        await Site.DisposeAsync();
    }
}

/// <summary>Issue 8: held calls seen live and decided from the page; the agent gets what was decided.</summary>
public sealed class ApprovalTests(ApprovalFixture fx, ITestOutputHelper output) : IClassFixture<ApprovalFixture>
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(120);

    private Site Site => fx.Site;

    private static Task<CallToolResult> PostAsync(ModelContextProtocol.Client.McpClient client, string text)
    {
        var cts = new CancellationTokenSource(CallTimeout);
        return client.CallAsync("workplace__post_message", new { topic = "build-failures", text }, cts.Token);
    }

    private List<string> PostedTexts() =>
        [.. Site.ReadLog().Where(l => l["tool"]?.GetValue<string>() == "post_message").Select(l => l.ToJsonString())];

    private async Task<ILocator> WaitForPendingRowAsync(IPage page, string text)
    {
        var row = page.Locator("#pending-rows tr", new() { HasText = text });
        await row.First.WaitForAsync(new() { Timeout = 30_000 });
        return row.First;
    }

    [Fact]
    public async Task HeldCall_AppearsWithoutReload_ApproveFromThePage_AgentReceivesTheResult()
    {
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.ApproverToken);
        await page.Locator("#pending-empty").WaitForAsync();
        await page.EvaluateAsync("() => { window.__noReload = 'still here'; }");

        await using var agent = await Agents.ConnectAsync(Site.Url, Site.AgentToken(ApprovalFixture.Poster));
        const string text = "Build 4512 failed: flaky test in the payments module, rerun scheduled.";
        var call = PostAsync(agent, text);

        var row = await WaitForPendingRowAsync(page, "workplace__post_message");
        Assert.Equal("still here", await page.EvaluateAsync<string>("() => window.__noReload"));
        Assert.DoesNotContain("null", await page.Locator("main").TextContentAsync(), StringComparison.Ordinal);
        var cells = await row.Locator("td").AllTextContentsAsync();
        Assert.Contains(ApprovalFixture.Poster, cells);
        Assert.Contains("posting-needs-a-human", cells);
        Assert.Matches(@"^\d+[smhd]", cells[4]); // age
        Assert.Matches(@"^(29|30)m", cells[5]);  // time left of a 30 min timeout
        Assert.DoesNotContain(PostedTexts(), t => t.Contains(text, StringComparison.Ordinal)); // nothing reached the forum while it waits
        await Dashboard.ScreenshotAsync(page, "approvals");

        await row.Locator("a").ClickAsync();
        await page.Locator("#approval-state .badge.pending").WaitForAsync();
        var main = await page.Locator("main").TextContentAsync();
        Assert.Contains(text, main, StringComparison.Ordinal);
        Assert.Contains("posts are public; a team lead checks them", main, StringComparison.Ordinal);
        Assert.Contains("team-leads", main, StringComparison.Ordinal);
        await page.Locator("#h-recent").WaitForAsync();
        await Dashboard.ScreenshotAsync(page, "approval-detail");

        await page.GetByRole(AriaRole.Button, new() { Name = "Approve this call" }).ClickAsync();
        var result = await call;
        Assert.False(result.IsError == true, result.Text());
        await page.Locator("#approval-state .badge", new() { HasTextRegex = new("approved|executed") }).WaitForAsync();
        Assert.Single(PostedTexts(), t => t.Contains(text, StringComparison.Ordinal));

        // The list emptied by itself, and the count follows.
        await page.GetByRole(AriaRole.Link, new() { Name = "← Pending approvals" }).ClickAsync();
        await page.Locator("#pending-rows tr", new() { HasText = text }).WaitForAsync(new() { State = WaitForSelectorState.Detached });
        Assert.Equal("still here", await page.EvaluateAsync<string>("() => window.__noReload"));
    }

    [Fact]
    public async Task Deny_WithAReason_TheAgentReceivesItAndNothingIsPosted()
    {
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.ApproverToken);
        await using var agent = await Agents.ConnectAsync(Site.Url, Site.AgentToken(ApprovalFixture.Poster));
        const string text = "Customer 88812's card number is 4111 1111 1111 1111, please help.";
        var call = PostAsync(agent, text);

        var row = await WaitForPendingRowAsync(page, "workplace__post_message");
        await row.Locator("a").ClickAsync();
        await page.Locator("#approval-state .badge.pending").WaitForAsync();

        // A denial without a reason is not sent.
        await page.GetByRole(AriaRole.Button, new() { Name = "Deny" }).ClickAsync();
        await page.Locator("#decision-result .notice.error").WaitForAsync();
        await page.GetByLabel("Reason (required to deny; the agent receives it)").FillAsync("contains a card number; never post customer data");
        await page.GetByRole(AriaRole.Button, new() { Name = "Deny" }).ClickAsync();

        var result = await call;
        Assert.True(result.IsError);
        Assert.Contains("contains a card number; never post customer data", result.Text(), StringComparison.Ordinal);
        await page.Locator("#approval-state .badge.denied").WaitForAsync();
        Assert.DoesNotContain(PostedTexts(), t => t.Contains("88812", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ApproveAndRemember_TheNextIdenticalCallRunsWithoutAsking_ADifferentOneWaitsAndShowsTheDifference()
    {
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.ApproverToken);
        await using var agent = await Agents.ConnectAsync(Site.Url, Site.AgentToken(ApprovalFixture.Poster));
        const string text = "Nightly build is green again.";
        var first = PostAsync(agent, text);
        var row = await WaitForPendingRowAsync(page, "workplace__post_message");
        await row.Locator("a").ClickAsync();
        await page.GetByLabel("Remember for").SelectOptionAsync("1h");
        await page.GetByRole(AriaRole.Button, new() { Name = "Approve and remember" }).ClickAsync();
        Assert.False((await first).IsError == true);
        await page.Locator("#approval-state", new() { HasText = "remembered until" }).WaitForAsync();

        // The same call again: it runs at once, and no approval appears.
        var sw = Stopwatch.StartNew();
        var again = await PostAsync(agent, text);
        Assert.False(again.IsError == true, again.Text());
        output.WriteLine($"the remembered call ran in {sw.ElapsedMilliseconds} ms without an approval");
        Assert.Equal(2, PostedTexts().Count(t => t.Contains(text, StringComparison.Ordinal)));
        await page.GetByRole(AriaRole.Link, new() { Name = "← Pending approvals" }).ClickAsync();
        await page.Locator("#pending-empty").WaitForAsync();

        // A different text is not covered: it waits, and its page shows what changed since the approved one.
        var other = PostAsync(agent, "Nightly build is red: 3 failures in checkout.");
        row = await WaitForPendingRowAsync(page, "workplace__post_message");
        await row.Locator("a").ClickAsync();
        var diff = page.Locator("#diff-table tbody tr");
        await diff.First.WaitForAsync();
        var changed = await diff.AllTextContentsAsync();
        Assert.Contains(changed, r => r.Contains("text", StringComparison.Ordinal) && r.Contains("changed", StringComparison.Ordinal)
            && r.Contains(text, StringComparison.Ordinal) && r.Contains("3 failures", StringComparison.Ordinal));
        Assert.DoesNotContain(changed, r => r.StartsWith("topic", StringComparison.Ordinal));
        await Dashboard.ScreenshotAsync(page, "approval-diff");
        await page.GetByLabel("Reason (required to deny; the agent receives it)").FillAsync("not now");
        await page.GetByRole(AriaRole.Button, new() { Name = "Deny" }).ClickAsync();
        Assert.True((await other).IsError);

        // The grant is listed; forgetting it makes the identical call ask again.
        await page.GetByRole(AriaRole.Link, new() { Name = "← Pending approvals" }).ClickAsync();
        var grant = page.Locator("#remembered-table tbody tr", new() { HasText = text });
        await grant.WaitForAsync();
        Assert.Contains("alice", await grant.TextContentAsync(), StringComparison.Ordinal);
        await grant.GetByRole(AriaRole.Button, new() { NameRegex = new("^Forget") }).ClickAsync();
        await grant.WaitForAsync(new() { State = WaitForSelectorState.Detached });
        var third = PostAsync(agent, text);
        row = await WaitForPendingRowAsync(page, "workplace__post_message");
        await row.Locator("a").ClickAsync();
        await page.GetByLabel("Reason (required to deny; the agent receives it)").FillAsync("asked again, as it should");
        await page.GetByRole(AriaRole.Button, new() { Name = "Deny" }).ClickAsync();
        Assert.Contains("asked again, as it should", (await third).Text(), StringComparison.Ordinal);
        Assert.Equal(2, PostedTexts().Count(t => t.Contains(text, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task TwoPersonRule_IsShown_AndTheCallRunsOnlyAfterTheSecondApprover()
    {
        var alice = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(alice, Site.Url, Site.ApproverToken);
        await using var agent = await Agents.ConnectAsync(Site.Url, Site.AgentToken(ApprovalFixture.Mailer));
        using var cts = new CancellationTokenSource(CallTimeout);
        var call = agent.CallAsync("workplace__send_mail", new { to = new[] { "partner@example.com" }, subject = "Q3 numbers", body = "Attached." }, cts.Token);
        var row = await WaitForPendingRowAsync(alice, "workplace__send_mail");
        Assert.Contains("two-person", await row.TextContentAsync(), StringComparison.Ordinal);
        await row.Locator("a").ClickAsync();
        await alice.Locator("#two-person", new() { HasText = "Two-person rule" }).WaitForAsync();
        await alice.GetByRole(AriaRole.Button, new() { Name = "Approve this call" }).ClickAsync();
        await alice.Locator("#two-person", new() { HasText = "1 of 2" }).WaitForAsync();
        Assert.False(call.IsCompleted);

        var bob = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(bob, Site.Url, Site.SecondApproverToken);
        row = await WaitForPendingRowAsync(bob, "workplace__send_mail");
        await row.Locator("a").ClickAsync();
        await bob.Locator("#two-person", new() { HasText = "alice" }).WaitForAsync();
        await bob.GetByRole(AriaRole.Button, new() { Name = "Approve this call" }).ClickAsync();
        var result = await call;
        Assert.False(result.IsError == true, result.Text());
    }

    [Fact]
    public async Task Decisions_NeedAnApproverAndTheCsrfToken()
    {
        await using var agent = await Agents.ConnectAsync(Site.Url, Site.AgentToken(ApprovalFixture.Poster));
        var call = PostAsync(agent, "Who may decide this one?");
        using var approverApi = new Api(Site.Url, Site.ApproverToken);
        string? id = null;
        Assert.True(await Wait.UntilAsync(async () =>
        {
            var (_, list) = await approverApi.SendAsync(HttpMethod.Get, "approvals?state=pending");
            id = list?["approvals"]?.AsArray().FirstOrDefault(a => a!["agent"]!.GetValue<string>() == ApprovalFixture.Poster)?["id"]?.GetValue<string>();
            return id is not null;
        }, TimeSpan.FromSeconds(30)));
        var (_, approval) = await approverApi.SendAsync(HttpMethod.Get, "approvals/" + id);
        var digest = approval!["digest"]!.GetValue<string>();
        var body = new { decision = "approve", digest };

        // An operator's session reads, and may not decide.
        var ops = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(ops, Site.Url, Site.OperatorToken);
        Assert.Equal(403, (await Dashboard.FetchAsync(ops, "POST", $"/api/v1/approvals/{id}/decision", body)).Status);
        await ops.GotoAsync(Site.Url + "/ui/#/approvals/" + id);
        await ops.Locator("#approval-state .badge.pending").WaitForAsync();
        Assert.Equal(0, await ops.GetByRole(AriaRole.Button, new() { Name = "Approve this call" }).CountAsync());

        // An approver's session without the CSRF token: refused, still pending.
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.ApproverToken);
        var (status, text) = await Dashboard.FetchAsync(page, "POST", $"/api/v1/approvals/{id}/decision", body, withCsrf: false);
        Assert.Equal(403, status);
        Assert.Contains("csrf", text, StringComparison.Ordinal);

        // An agent's token: refused.
        using var agentApi = new Api(Site.Url, Site.AgentToken(ApprovalFixture.Bulk));
        Assert.Equal(HttpStatusCode.Forbidden, (await agentApi.SendAsync(HttpMethod.Post, $"approvals/{id}/decision", body)).Status);
        Assert.False(call.IsCompleted);

        // With the token it goes through.
        Assert.Equal(200, (await Dashboard.FetchAsync(page, "POST", $"/api/v1/approvals/{id}/decision", body)).Status);
        Assert.False((await call).IsError == true);
    }
}
