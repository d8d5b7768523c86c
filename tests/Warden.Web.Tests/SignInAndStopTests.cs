using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Warden.Web.Tests;

/// <summary>One gateway and one Playwright for the tests of a class; each test opens its own browser profile.</summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public const string Helper = "inbox-helper";
    public const string Stoppable = "stoppable";
    public const string Poster = "forum-bot";
    public const string Deleter = "breaker-bot";

    public static string Policy => $$"""
        version: 1
        default: deny
        agents:
          {{Helper}}: { groups: [assistants] }
          {{Stoppable}}: { groups: [assistants] }
          {{Poster}}: { groups: [assistants] }
          {{Deleter}}: { groups: [assistants] }
        classes:
          workplace:
            delete_mail: [mutating, destructive]
        rules:
          - id: reads
            match: { class: read_only }
            effect: allow
          - id: slow
            match: { server: workplace, tool: slow_operation }
            effect: allow
          - id: deletions
            match: { server: workplace, tool: delete_mail }
            effect: allow
        limits:
          - id: delete-breaker
            match: { server: workplace, tool: delete_mail }
            breaker: 2 in 60s
        """;

    internal Site Site { get; private set; } = null!;

    internal Browser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Site = await Site.StartAsync(Policy, [Helper, Stoppable, Poster, Deleter]);
        Browser = await Browser.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        await Site.DisposeAsync();
    }
}

/// <summary>Issue 8: signing in, who may do what, CSRF, stopping an agent from the page, audit search.</summary>
public sealed class SignInAndStopTests(GatewayFixture fx, ITestOutputHelper output) : IClassFixture<GatewayFixture>
{
    private Site Site => fx.Site;

    [Fact]
    public async Task SignIn_OperatorToken_SessionCookieIsHttpOnlyStrictAndSignOutEndsIt()
    {
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.OperatorToken);
        Assert.Equal("ops (operator)", await page.Locator("#who").TextContentAsync());
        Assert.True(await page.GetByRole(AriaRole.Link, new() { Name = "Agents" }).IsVisibleAsync());

        var cookies = await page.Context.CookiesAsync([Site.Url]);
        var session = Assert.Single(cookies, c => c.Name == "warden_session");
        Assert.True(session.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, session.SameSite);
        Assert.Equal(-1, session.Expires); // a browser-session cookie; the server slides its own expiry
        Assert.DoesNotContain(Site.OperatorToken, session.Value, StringComparison.Ordinal);

        // The session works for the API the page uses, then sign-out ends it.
        Assert.Equal(200, (await Dashboard.FetchAsync(page, "GET", "/api/v1/agents")).Status);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.GetByLabel("Operator or approver token").WaitForAsync();
        Assert.Equal(401, (await Dashboard.FetchAsync(page, "GET", "/api/v1/agents")).Status);
    }

    [Fact]
    public async Task SignIn_AgentToken_IsRefused()
    {
        var page = await fx.Browser.NewPageAsync();
        await page.GotoAsync(Site.Url + "/ui/");
        await page.GetByLabel("Operator or approver token").FillAsync(Site.AgentToken(GatewayFixture.Helper));
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        var error = page.Locator("#login-error");
        await error.Filter(new() { HasText = "cannot sign in" }).WaitForAsync();
        Assert.Contains("agent token cannot sign in", await error.TextContentAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(await page.Context.CookiesAsync([Site.Url]), c => c.Name == "warden_session");

        // The same refusal without the form, with a valid CSRF token: 403, and still no session.
        var (status, body) = await Dashboard.FetchAsync(page, "POST", "/ui/login", new { token = Site.AgentToken(GatewayFixture.Helper) });
        Assert.Equal(403, status);
        Assert.Contains("forbidden", body, StringComparison.Ordinal);
        Assert.Equal(401, (await Dashboard.FetchAsync(page, "GET", "/api/v1/whoami")).Status);

        // A wrong token: 401.
        Assert.Equal(401, (await Dashboard.FetchAsync(page, "POST", "/ui/login", new { token = "wdn_op_not-a-token" })).Status);
    }

    [Fact]
    public async Task Csrf_CookieRequestWithoutTheToken_IsRefusedAndNothingHappens()
    {
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.OperatorToken);

        var (status, body) = await Dashboard.FetchAsync(page, "POST", "/api/v1/stops", new { scope = "agent", target = GatewayFixture.Poster, reason = "csrf probe" }, withCsrf: false);
        Assert.Equal(403, status);
        Assert.Contains("csrf", body, StringComparison.Ordinal);
        using var ops = new Api(Site.Url, Site.OperatorToken);
        var (_, stops) = await ops.SendAsync(HttpMethod.Get, "stops");
        Assert.DoesNotContain(stops!.AsArray(), s => s!["target"]!.GetValue<string>() == GatewayFixture.Poster);

        // A forged token is refused too; the sign-in form itself needs the token.
        var forged = await page.EvaluateAsync<int>("""
            async () => (await fetch('/api/v1/stops', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Warden-CSRF': 'forged' },
              body: JSON.stringify({ scope: 'agent', target: 'forum-bot', reason: 'x' }) })).status
            """);
        Assert.Equal(403, forged);
        var login = await page.EvaluateAsync<int>("""
            async () => (await fetch('/ui/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: 'x' }) })).status
            """);
        Assert.Equal(403, login);

        // Bearer requests need no CSRF token (no browser adds the header), and a cookie never upgrades one:
        // an agent's bearer token with an operator's session cookie is still the agent.
        var cookie = (await page.Context.CookiesAsync([Site.Url])).Single(c => c.Name == "warden_session");
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, Site.Url + "/api/v1/stops");
        request.Headers.Authorization = new("Bearer", Site.AgentToken(GatewayFixture.Helper));
        request.Headers.Add("Cookie", "warden_session=" + cookie.Value);
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    [Fact]
    public async Task Approver_CannotActAsOperator()
    {
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.ApproverToken);
        Assert.Equal("alice (approver)", await page.Locator("#who").TextContentAsync());
        Assert.False(await page.GetByRole(AriaRole.Link, new() { Name = "Agents" }).IsVisibleAsync());

        // With a valid session and CSRF token, the operator's endpoints still refuse.
        Assert.Equal(403, (await Dashboard.FetchAsync(page, "POST", "/api/v1/stops", new { scope = "agent", target = GatewayFixture.Poster, reason = "not mine" })).Status);
        Assert.Equal(403, (await Dashboard.FetchAsync(page, "POST", "/api/v1/stops/resume", new { scope = "agent", target = GatewayFixture.Poster, reason = "x" })).Status);
        Assert.Equal(403, (await Dashboard.FetchAsync(page, "GET", "/api/v1/agents")).Status);
        Assert.Equal(403, (await Dashboard.FetchAsync(page, "POST", "/api/v1/agents", new { name = "sneaky" })).Status);
        Assert.Equal(403, (await Dashboard.FetchAsync(page, "GET", "/api/v1/calls")).Status);

        // Opening the agents page by address shows the refusal rather than controls.
        await page.GotoAsync(Site.Url + "/ui/#/agents");
        await page.Locator(".notice.error").WaitForAsync();
        Assert.Equal(0, await page.Locator("button[data-action=stop]").CountAsync());
    }

    [Fact]
    public async Task Stop_FromTheAgentsPage_RefusesTheNextCallAndTheAuditFindsIt()
    {
        const string agent = GatewayFixture.Stoppable;
        await using var client = await Agents.ConnectAsync(Site.Url, Site.AgentToken(agent));
        Assert.False((await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError == true);

        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.OperatorToken);
        await page.GetByRole(AriaRole.Link, new() { Name = "Agents" }).ClickAsync();
        var row = page.Locator($"tr[data-agent='{agent}']");
        await row.WaitForAsync();
        await Dashboard.ScreenshotAsync(page, "agents");

        // No reason, no stop.
        await page.GetByRole(AriaRole.Button, new() { Name = $"Stop {agent}" }).ClickAsync();
        await page.Locator("#agent-result .notice.error").WaitForAsync();
        await page.GetByLabel($"Reason to stop {agent}").FillAsync("runaway loop seen on the dashboard");
        await page.GetByRole(AriaRole.Button, new() { Name = $"Stop {agent}" }).ClickAsync();
        await row.Locator(".badge.stopped").WaitForAsync();

        var refused = await client.CallAsync("workplace__list_mail", new { limit = 1 });
        Assert.True(refused.IsError);
        Assert.Contains("stopped by ops", refused.Text(), StringComparison.Ordinal);
        Assert.Contains("runaway loop seen on the dashboard", refused.Text(), StringComparison.Ordinal);

        // The refusal is in the audit: search by agent and effect, open the record, walk its neighbours.
        await page.GetByRole(AriaRole.Link, new() { Name = "Audit" }).ClickAsync();
        await page.GetByLabel("Agent").FillAsync(agent);
        await page.GetByLabel("Effect").SelectOptionAsync("deny");
        await page.GetByLabel("Tool").FillAsync("list_mail");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        var hit = page.Locator("#audit-results tbody tr").First;
        await hit.WaitForAsync();
        Assert.Equal(1, await page.Locator("#audit-results tbody tr").CountAsync());
        Assert.Contains("deny", await hit.TextContentAsync(), StringComparison.Ordinal);
        Assert.Contains("workplace__list_mail", await hit.TextContentAsync(), StringComparison.Ordinal);
        Assert.Contains("agent=" + agent, page.Url, StringComparison.Ordinal); // the search is a link
        await Dashboard.ScreenshotAsync(page, "audit");
        var seq = int.Parse((await hit.GetAttributeAsync("data-seq"))!);
        await hit.Locator("a").First.ClickAsync();
        await page.Locator("#audit-record").WaitForAsync();
        Assert.Contains("runaway loop", await page.Locator("main").TextContentAsync(), StringComparison.Ordinal);
        Assert.Contains("links to the previous record", await page.Locator("main").TextContentAsync(), StringComparison.Ordinal);
        await page.Locator("#prev-record").ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = $"Audit record {seq - 1}" }).WaitForAsync();
        await page.Locator("#next-record").ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = $"Audit record {seq}" }).WaitForAsync();

        // Resume from the page; the agent's calls run again.
        await page.GetByRole(AriaRole.Link, new() { Name = "Agents" }).ClickAsync();
        await page.GetByLabel($"Reason to resume {agent}").FillAsync("loop fixed");
        await page.GetByRole(AriaRole.Button, new() { Name = $"Resume {agent}" }).ClickAsync();
        await row.Locator(".badge.active").WaitForAsync();
        Assert.False((await client.CallAsync("workplace__list_mail", new { limit = 1 })).IsError == true);
    }

    [Fact]
    public async Task Breaker_PausingAnAgent_ShowsABannerUntilAnOperatorResumesIt()
    {
        const string agent = GatewayFixture.Deleter;
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.OperatorToken);
        Assert.Equal(0, await page.Locator("#banners .banner").CountAsync());

        await using var client = await Agents.ConnectAsync(Site.Url, Site.AgentToken(agent));
        CallToolResultLike last = default;
        for (var i = 1; i <= 3; i++)
        {
            var r = await client.CallAsync("workplace__delete_mail", new { ids = new[] { $"mail-{100 + i}" } });
            last = new(r.IsError == true, r.Text());
        }

        Assert.True(last.IsError);
        Assert.Contains("paused", last.Text, StringComparison.Ordinal);

        // The banner comes without navigating, on whatever page is open.
        var banner = page.Locator("#banners .banner", new() { HasText = $"{agent} is paused" });
        await banner.WaitForAsync(new() { Timeout = 20_000 });
        Assert.Equal("alert", await banner.GetAttributeAsync("role"));
        Assert.Contains("breaker:delete-breaker", await banner.TextContentAsync(), StringComparison.Ordinal);
        await Dashboard.ScreenshotAsync(page, "breaker-banner");

        await banner.GetByRole(AriaRole.Link, new() { Name = "Go to agents" }).ClickAsync();
        var row = page.Locator($"tr[data-agent='{agent}']");
        await row.Locator(".badge.paused").WaitForAsync();
        await page.GetByLabel($"Reason to resume {agent}").FillAsync("checked the deletions");
        await page.GetByRole(AriaRole.Button, new() { Name = $"Resume {agent}" }).ClickAsync();
        await row.Locator(".badge.active").WaitForAsync();
        await banner.WaitForAsync(new() { State = WaitForSelectorState.Detached, Timeout = 20_000 });
        Assert.False((await client.CallAsync("workplace__delete_mail", new { ids = new[] { "mail-120" } })).IsError == true);
    }

    private readonly record struct CallToolResultLike(bool IsError, string Text);

    [Fact]
    public async Task SignIn_WorksFromTheKeyboardAlone()
    {
        var page = await fx.Browser.NewPageAsync();
        await page.GotoAsync(Site.Url + "/ui/");
        await page.GetByLabel("Operator or approver token").WaitForAsync();

        // The token field has focus on arrival; Enter submits; Tab reaches the menu links in order.
        await page.Keyboard.TypeAsync(Site.ApproverToken);
        await page.Keyboard.PressAsync("Enter");
        await page.Locator("#who", new() { HasText = "alice (approver)" }).WaitForAsync();
        await page.Locator("body").FocusAsync();
        var reached = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            reached.Add(await page.EvaluateAsync<string>("() => (document.activeElement.textContent || '').trim()"));
        }

        output.WriteLine("tab order: " + string.Join(" | ", reached));
        Assert.Contains(reached, t => t.StartsWith("Approvals", StringComparison.Ordinal));
        Assert.Contains("Audit", reached);
        Assert.Contains("Sign out", reached);
    }

    [Fact]
    public async Task LiveCalls_ShowACallWhileItRuns()
    {
        await using var client = await Agents.ConnectAsync(Site.Url, Site.AgentToken(GatewayFixture.Helper));
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, Site.OperatorToken);
        await page.GetByRole(AriaRole.Link, new() { Name = "Live calls" }).ClickAsync();
        await page.GetByRole(AriaRole.Heading, new() { Name = "In flight now" }).WaitForAsync();

        var slow = client.CallAsync("workplace__slow_operation", new { seconds = 6, steps = 6 });
        var row = page.Locator("#calls-inflight tbody tr", new() { HasText = "workplace__slow_operation" });
        await row.WaitForAsync(new() { Timeout = 15_000 });
        Assert.Contains(GatewayFixture.Helper, await row.TextContentAsync(), StringComparison.Ordinal);
        await Dashboard.ScreenshotAsync(page, "live-calls");
        Assert.False((await slow).IsError == true);
        await row.WaitForAsync(new() { State = WaitForSelectorState.Detached, Timeout = 15_000 });
    }

    [Fact]
    public async Task RevokedApprover_SessionEnds()
    {
        using var ops = new Api(Site.Url, Site.OperatorToken);
        var (status, added) = await ops.SendAsync(HttpMethod.Post, "approvers", new { name = "temp-approver", groups = new[] { "team-leads" } });
        Assert.Equal(HttpStatusCode.OK, status);
        var page = await fx.Browser.NewPageAsync();
        await Dashboard.SignInAsync(page, Site.Url, added!["token"]!.GetValue<string>());
        Assert.Equal(200, (await Dashboard.FetchAsync(page, "GET", "/api/v1/whoami")).Status);

        Assert.Equal(HttpStatusCode.NoContent, (await ops.SendAsync(HttpMethod.Delete, "approvers/temp-approver")).Status);
        Assert.True(await Wait.UntilAsync(async () => (await Dashboard.FetchAsync(page, "GET", "/api/v1/whoami")).Status == 401, TimeSpan.FromSeconds(10)));
        output.WriteLine("the revoked approver's session answered 401");
    }

    [Fact]
    public async Task Pages_HaveSecurityHeadersAndNoThirdPartyRequests()
    {
        var page = await fx.Browser.NewPageAsync();
        var hosts = new List<string>();
        page.Request += (_, r) => hosts.Add(new Uri(r.Url).Authority);
        var response = await page.GotoAsync(Site.Url + "/ui/");
        var headers = await response!.AllHeadersAsync();
        Assert.Contains("default-src 'none'", headers["content-security-policy"], StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", headers["content-security-policy"], StringComparison.Ordinal);
        Assert.Equal("nosniff", headers["x-content-type-options"]);
        await Dashboard.SignInAsync(page, Site.Url, Site.OperatorToken);
        await page.GetByRole(AriaRole.Link, new() { Name = "Audit" }).ClickAsync();
        await page.Locator("#audit-count").WaitForAsync();
        Assert.All(hosts, h => Assert.Equal(new Uri(Site.Url).Authority, h));
        output.WriteLine($"{hosts.Count} requests, all to {new Uri(Site.Url).Authority}");
    }
}
