using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Warden.Gateway.Tests.Infrastructure;

namespace Warden.Gateway.Tests;

/// <summary>
/// Human approval end to end: the sample workplace server behind a live gateway, the official C# SDK client as the
/// agent, and approvers deciding through <c>/api/v1/approvals</c>. The forum's own operations.log says what ran.
/// </summary>
[Trait("Category", "E2E")]
public sealed class ApprovalTests(ApprovalTests.Fixture fx) : IClassFixture<ApprovalTests.Fixture>
{
    private const string Policy = """
        version: 1
        default: deny
        agents:
          forum-helper: { groups: [assistants] }
          docs-helper: { groups: [assistants] }
          desk-user: { groups: [desk], trust_client_confirmation: true }
        classes:
          workplace:
            post_message: [mutating, outbound]
            share_document: [mutating, outbound]
        rules:
          - id: reads-are-fine
            match: { class: read_only }
            effect: allow
          - id: quick-posts
            description: posts to the 'quick' topic time out fast (timeout test)
            match: { server: workplace, tool: post_message }
            when: args.topic == 'quick'
            effect: ask
            approvers: [team-leads]
            timeout: 2s
          - id: posting-needs-a-human
            match: { server: workplace, tool: post_message }
            when: args.topic != 'quick' && args.topic != 'payroll' && args.topic != 'vpn-help' && args.topic != 'desk'
            effect: ask
            approvers: [team-leads]
            timeout: 15m
          - id: payroll-needs-two
            match: { server: workplace, tool: post_message }
            when: args.topic == 'payroll'
            effect: ask
            approvers: [team-leads]
            two_person: true
          - id: posting-deferred
            description: clients that give up after 60 s (the TypeScript SDK's default) are answered at once
            match: { server: workplace, tool: post_message }
            when: args.topic == 'vpn-help'
            effect: ask
            mode: defer
            approvers: [team-leads]
          - id: desk-updates-confirmed-at-the-client
            match: { server: workplace, tool: update_record, agent: desk-user }
            effect: ask
            approvers: [client_user]
          - id: desk-posts-confirmed-at-the-client
            match: { server: workplace, tool: post_message, agent: desk-user }
            when: args.topic == 'desk'
            effect: ask
            approvers: [client_user]
          - id: sharing-waits-deferred
            match: { server: workplace, tool: share_document }
            effect: ask
            mode: defer
            approvers: [team-leads]
        """;

    public sealed class Fixture : GatewayFixture
    {
        public string Data { get; private set; } = "";

        public string Agent { get; private set; } = "";

        public string Docs { get; private set; } = "";

        public string Lead1 { get; private set; } = "";

        public string Lead2 { get; private set; } = "";

        public string Outsider { get; private set; } = "";

        public string SameName { get; private set; } = "";

        public WebhookReceiver Hooks { get; private set; } = null!;

        internal override async Task<WardenGateway> StartAsync(TempDir temp)
        {
            Data = temp.Sub("workplace");
            Hooks = await WebhookReceiver.StartAsync(failFirst: 2);
            Environment.SetEnvironmentVariable("WARDEN_TEST_HOOK_SECRET", WebhookReceiver.Secret);
            var extra = $"""
                approvals:
                  max_pending_per_agent: 150
                  progress_interval: 1s
                webhooks:
                  - url: {Hooks.Url}
                    secret_env: WARDEN_TEST_HOOK_SECRET
                  - url: http://127.0.0.1:9/dead
                """;
            var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", Data), policy: Policy, extraYaml: extra, temp: temp);
            Agent = await gateway.AddAgentAsync("forum-helper", "assistants");
            Docs = await gateway.AddAgentAsync("docs-helper", "assistants");
            Lead1 = await gateway.AddPrincipalAsync("approvers", "lead-1", "team-leads");
            Lead2 = await gateway.AddPrincipalAsync("approvers", "lead-2", "team-leads");
            Outsider = await gateway.AddPrincipalAsync("approvers", "outsider", "marketing");
            SameName = await gateway.AddPrincipalAsync("approvers", "forum-helper", "team-leads");
            return gateway;
        }

        internal override async ValueTask StopExtrasAsync() => await Hooks.DisposeAsync();
    }

    private List<JsonObject> Posts(string text) =>
        [.. TestUpstreams.OperationsLog(fx.Data).Where(o => o["tool"]!.GetValue<string>() == "post_message" && o["arguments"]?["text"]?.GetValue<string>() == text)];

    private async Task<JsonNode> PendingForAsync(string text)
    {
        JsonNode? found = null;
        await Wait.UntilAsync(
            async () =>
            {
                found = (await fx.Gateway.ApprovalsAsync("pending")).FirstOrDefault(a => a!["arguments"]?["text"]?.GetValue<string>() == text);
                return found is not null;
            },
            $"a pending approval for '{text}'");
        return found!;
    }

    [Fact]
    public async Task HeldPost_RunsOnlyAfterApproval_ExactlyOnce_WithTheApprovedText()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "Restart the runner with --no-cache " + Guid.NewGuid().ToString("N")[..6];
        var progress = new ProgressLog();
        var call = client.CallToolAsync("workplace__post_message", new Dictionary<string, object?> { ["topic"] = "build-failures", ["text"] = text }, progress, cancellationToken: new CancellationTokenSource(McpTest.CallTimeout).Token).AsTask();

        var pending = await PendingForAsync(text);
        Assert.Equal("hold", pending["mode"]!.GetValue<string>());
        Assert.Equal("posting-needs-a-human", pending["rule"]!.GetValue<string>());
        Assert.Equal(["team-leads"], pending["approverGroups"]!.AsArray().Select(g => g!.GetValue<string>()));
        await Task.Delay(300);
        Assert.False(call.IsCompleted);
        Assert.Empty(Posts(text)); // nothing reaches the forum while the call waits

        var decided = await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve");
        Assert.Equal(HttpStatusCode.OK, decided.Status);

        var result = await call;
        Assert.NotEqual(true, result.IsError);
        var post = Assert.Single(Posts(text));
        Assert.Equal("build-failures", post["arguments"]!["topic"]!.GetValue<string>());
        Assert.Contains(progress.Values, v => v.Message?.Contains("waiting for approval", StringComparison.Ordinal) == true && v.Message.Contains("team-leads", StringComparison.Ordinal));

        // Replaying the approval changes nothing: the call ran once.
        var replay = await fx.Gateway.DecideAsync(pending, fx.Lead2, "approve");
        Assert.Equal(HttpStatusCode.Conflict, replay.Status);
        Assert.Single(Posts(text));
        var after = await fx.Gateway.ApprovalAsync(pending["id"]!.GetValue<string>());
        Assert.Equal("executed", after["state"]!.GetValue<string>());
        Assert.Equal("lead-1", after["decidedBy"]!.GetValue<string>());

        // The audit has the whole story of this approval, in order.
        var approvalId = pending["id"]!.GetValue<string>();
        await Wait.UntilAsync(
            async () =>
            {
                var audit = JsonNode.Parse(await (await fx.Gateway.ApiAsync(HttpMethod.Get, "audit?kind=approval.*&agent=forum-helper&limit=10000", fx.Gateway.OperatorToken)).Content.ReadAsStringAsync())!;
                var kinds = audit["events"]!.AsArray().Where(e => e!.ToJsonString().Contains(approvalId, StringComparison.Ordinal)).Select(e => e!["kind"]!.GetValue<string>()).ToList();
                return kinds.SequenceEqual(["approval.requested", "approval.granted", "approval.executed"]);
            },
            "approval.requested, approval.granted and approval.executed in the audit");
    }

    [Fact]
    public async Task HeldPost_Denied_AgentGetsTheReason_AndTheForumIsUnchanged()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "Disable auth to fix the build " + Guid.NewGuid().ToString("N")[..6];
        var call = client.CallAsync("workplace__post_message", new { topic = "build-failures", text });
        var pending = await PendingForAsync(text);

        var denied = await fx.Gateway.DecideAsync(pending, fx.Lead1, "deny", reason: "this advice would expose user data");
        Assert.Equal(HttpStatusCode.OK, denied.Status);
        var result = await call;
        Assert.True(result.IsError);
        Assert.Contains("denied by lead-1", result.Text());
        Assert.Contains("this advice would expose user data", result.Text());
        Assert.Empty(Posts(text));
    }

    [Fact]
    public async Task HeldPost_TimesOut_AndIsDenied()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "nobody looks " + Guid.NewGuid().ToString("N")[..6];
        var result = await client.CallAsync("workplace__post_message", new { topic = "quick", text });
        Assert.True(result.IsError);
        Assert.Contains("expired", result.Text());
        Assert.Empty(Posts(text));

        // Approving after expiry does nothing.
        var expired = (await fx.Gateway.ApprovalsAsync("expired")).First(a => a!["arguments"]!["text"]!.GetValue<string>() == text)!;
        Assert.Equal(HttpStatusCode.Conflict, (await fx.Gateway.DecideAsync(expired, fx.Lead1, "approve")).Status);
        Assert.Empty(Posts(text));
    }

    [Fact]
    public async Task OnlyApproversInTheGroup_WhoDidNotMakeTheCall_CanDecide_WithTheDigestTheySaw()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "who may decide " + Guid.NewGuid().ToString("N")[..6];
        var call = client.CallAsync("workplace__post_message", new { topic = "general", text });
        var pending = await PendingForAsync(text);
        var id = pending["id"]!.GetValue<string>();

        // Agents cannot even read approvals, let alone decide them.
        Assert.Equal(HttpStatusCode.Forbidden, (await fx.Gateway.ApiAsync(HttpMethod.Get, "approvals", fx.Agent)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await fx.Gateway.DecideAsync(pending, fx.Agent, "approve")).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await fx.Gateway.DecideAsync(pending, fx.Docs, "approve")).Status);
        // An operator is not an approver; an approver outside the rule's groups is not enough.
        var op = await fx.Gateway.DecideAsync(pending, fx.Gateway.OperatorToken, "approve");
        Assert.Equal(HttpStatusCode.Forbidden, op.Status);
        Assert.Contains("only approvers", op.Body);
        Assert.Equal(HttpStatusCode.Forbidden, (await fx.Gateway.DecideAsync(pending, fx.Outsider, "approve")).Status);
        // An approver account with the agent's own name cannot approve the agent's call.
        var own = await fx.Gateway.DecideAsync(pending, fx.SameName, "approve");
        Assert.Equal(HttpStatusCode.Forbidden, own.Status);
        Assert.Contains("made this call", own.Body);
        // A digest other than the call's (a different call than the one shown) is refused.
        var wrong = await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve", digest: new string('0', 64));
        Assert.Equal(HttpStatusCode.Conflict, wrong.Status);

        Assert.Equal("pending", (await fx.Gateway.ApprovalAsync(id))["state"]!.GetValue<string>());
        Assert.Empty(Posts(text));

        // Two approvers at once: exactly one decision counts.
        var both = await Task.WhenAll(fx.Gateway.DecideAsync(pending, fx.Lead1, "approve"), fx.Gateway.DecideAsync(pending, fx.Lead2, "approve"));
        Assert.Equal(1, both.Count(r => r.Status == HttpStatusCode.OK));
        Assert.Equal(1, both.Count(r => r.Status == HttpStatusCode.Conflict));
        Assert.NotEqual(true, (await call).IsError);
        Assert.Single(Posts(text));
    }

    [Fact]
    public async Task TwoPersonRule_NeedsTwoDifferentApprovers()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "payroll run moved " + Guid.NewGuid().ToString("N")[..6];
        var call = client.CallAsync("workplace__post_message", new { topic = "payroll", text });
        var pending = await PendingForAsync(text);
        Assert.True(pending["twoPerson"]!.GetValue<bool>());

        Assert.Equal(HttpStatusCode.OK, (await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve")).Status);
        var half = await fx.Gateway.ApprovalAsync(pending["id"]!.GetValue<string>());
        Assert.Equal("pending", half["state"]!.GetValue<string>());
        Assert.Single(half["approvals"]!.AsArray());
        Assert.Equal(HttpStatusCode.Conflict, (await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve")).Status);
        await Task.Delay(200);
        Assert.Empty(Posts(text));

        Assert.Equal(HttpStatusCode.OK, (await fx.Gateway.DecideAsync(pending, fx.Lead2, "approve")).Status);
        Assert.NotEqual(true, (await call).IsError);
        Assert.Single(Posts(text));
    }

    [Fact]
    public async Task Stream_ReportsEachChangeOnceInOrder_AndNeverPendingAgainAfterTheDecision()
    {
        // The dashboard's feed: every change of an approval, each revision once, in order. Without that, a copy of
        // "pending" read a moment before the decision could follow it and show a decided call as waiting again.
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/v1/approvals/stream");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", fx.Lead1);
        using var response = await fx.Gateway.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.StartsWith(": approvals", await reader.ReadLineAsync());

        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "payroll stream check " + Guid.NewGuid().ToString("N")[..6];
        var call = client.CallAsync("workplace__post_message", new { topic = "payroll", text });
        var pending = await PendingForAsync(text);
        var id = pending["id"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.OK, (await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve")).Status);
        Assert.Equal(HttpStatusCode.OK, (await fx.Gateway.DecideAsync(pending, fx.Lead2, "approve")).Status);
        Assert.NotEqual(true, (await call).IsError);

        var seen = new List<(int Revision, string State, int Signatures)>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (seen.Count == 0 || seen[^1].State != "executed")
        {
            var line = await reader.ReadLineAsync(cts.Token);
            Assert.NotNull(line);
            if (line.StartsWith("data: ", StringComparison.Ordinal) && JsonNode.Parse(line[6..]) is { } a && a["id"]!.GetValue<string>() == id)
            {
                seen.Add((a["revision"]!.GetValue<int>(), a["state"]!.GetValue<string>(), a["approvals"]!.AsArray().Count));
            }
        }

        Assert.Equal(seen.Select(s => s.Revision).Order(), seen.Select(s => s.Revision));
        Assert.Equal(seen.Count, seen.Select(s => s.Revision).Distinct().Count());
        Assert.Equal(["pending", "pending", "approved", "executed"], seen.Select(s => s.State));
        Assert.Equal([0, 1, 2, 2], seen.Select(s => s.Signatures));
    }

    [Fact]
    public async Task DeferMode_AnswersAtOnce_AndOnlyTheIdenticalRetryAfterApprovalRuns_Once()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Docs);
        var doc = new { id = "doc-2", visibility = "team" };
        var first = await client.CallAsync("workplace__share_document", doc);
        Assert.True(first.IsError);
        Assert.Contains("pending approval apr_", first.Text());
        Assert.Contains("retry the same call", first.Text());

        var again = await client.CallAsync("workplace__share_document", doc);
        Assert.Contains("still pending", again.Text());

        var pending = (await fx.Gateway.ApprovalsAsync("pending")).Single(a => a!["tool"]!.GetValue<string>() == "share_document" && a["agent"]!.GetValue<string>() == "docs-helper")!;
        Assert.Equal("defer", pending["mode"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve")).Status);

        // Other arguments are another call: it asks anew and does not run.
        var changed = await client.CallAsync("workplace__share_document", new { id = "doc-2", visibility = "public" });
        Assert.True(changed.IsError);
        Assert.Contains("pending approval", changed.Text());

        // The identical retry (keys in another order) runs, once.
        var retry = await client.CallAsync("workplace__share_document", new { visibility = "team", id = "doc-2" });
        Assert.NotEqual(true, retry.IsError);
        var third = await client.CallAsync("workplace__share_document", doc);
        Assert.True(third.IsError);
        Assert.Contains("pending approval", third.Text());

        var shares = TestUpstreams.OperationsLog(fx.Data).Where(o => o["tool"]!.GetValue<string>() == "share_document").ToList();
        var share = Assert.Single(shares);
        Assert.Equal("team", share["arguments"]!["visibility"]!.GetValue<string>());
    }

    [Fact]
    public async Task ApproveAndRemember_LetsTheSameCallRun_UntilRevoked()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "daily standup notes " + Guid.NewGuid().ToString("N")[..6];
        var call = client.CallAsync("workplace__post_message", new { topic = "standup", text });
        var pending = await PendingForAsync(text);
        var decided = await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve", rememberFor: "1h");
        Assert.Equal(HttpStatusCode.OK, decided.Status);
        Assert.NotEqual(true, (await call).IsError);

        // The same call again runs without asking; another text still asks.
        Assert.NotEqual(true, (await client.CallAsync("workplace__post_message", new { topic = "standup", text })).IsError);
        Assert.Equal(2, Posts(text).Count);
        var remembered = JsonNode.Parse(await (await fx.Gateway.ApiAsync(HttpMethod.Get, "approvals/remembered", fx.Lead2)).Content.ReadAsStringAsync())!["remembered"]!.AsArray();
        var grant = remembered.Single(g => g!["arguments"]!["text"]!.GetValue<string>() == text)!;
        Assert.Equal("lead-1", grant["by"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.NoContent, (await fx.Gateway.ApiAsync(HttpMethod.Delete, "approvals/remembered/" + grant["id"]!.GetValue<string>(), fx.Lead2)).StatusCode);
        var asksAgain = client.CallAsync("workplace__post_message", new { topic = "standup", text });
        var again = await PendingForAsync(text);
        Assert.Equal(HttpStatusCode.OK, (await fx.Gateway.DecideAsync(again, fx.Lead1, "deny", reason: "enough")).Status);
        Assert.True((await asksAgain).IsError);
        Assert.Equal(2, Posts(text).Count);
    }

    [Fact]
    public async Task AStop_VoidsWhatWaits_AndApprovingAfterwardsDoesNothing()
    {
        var token = await fx.Gateway.AddAgentAsync("stopped-helper", "assistants");
        var client = await fx.Gateway.ConnectAsync(token);
        var text = "before the stop " + Guid.NewGuid().ToString("N")[..6];
        var call = client.CallAsync("workplace__post_message", new { topic = "general", text });
        var pending = await PendingForAsync(text);

        using var stop = await fx.Gateway.ApiAsync(HttpMethod.Post, "stops", fx.Gateway.OperatorToken, new { scope = "agent", target = "stopped-helper", reason = "runaway" });
        Assert.True(stop.IsSuccessStatusCode);
        var result = await call;
        Assert.True(result.IsError);
        Assert.Contains("voided", result.Text());

        var late = await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve");
        Assert.Equal(HttpStatusCode.Conflict, late.Status);
        Assert.Empty(Posts(text));
        Assert.Equal("voided", (await fx.Gateway.ApprovalAsync(pending["id"]!.GetValue<string>()))["state"]!.GetValue<string>());
    }

    [Fact]
    public async Task CancellingTheCall_WithdrawsTheApproval()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "changed my mind " + Guid.NewGuid().ToString("N")[..6];
        using var cts = new CancellationTokenSource();
        var call = client.CallToolAsync("workplace__post_message", new Dictionary<string, object?> { ["topic"] = "general", ["text"] = text }, cancellationToken: cts.Token).AsTask();
        var pending = await PendingForAsync(text);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await Wait.UntilAsync(async () => (await fx.Gateway.ApprovalAsync(pending["id"]!.GetValue<string>()))["state"]!.GetValue<string>() == "withdrawn", "the approval to be withdrawn");
        Assert.Equal(HttpStatusCode.Conflict, (await fx.Gateway.DecideAsync(pending, fx.Lead1, "approve")).Status);
        Assert.Empty(Posts(text));
    }

    [Fact]
    public async Task HundredCallsWaitingAtOnce_ApprovedInRandomOrderByTwoApprovers_EachAgentGetsItsOwnResult()
    {
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => fx.Gateway.ConnectAsync(fx.Agent)));
        var run = Guid.NewGuid().ToString("N")[..6];
        var texts = Enumerable.Range(0, 100).Select(i => $"bulk {run} #{i}").ToArray();
        var calls = texts.Select((t, i) => clients[i % clients.Length].CallAsync("workplace__post_message", new { topic = "bulk", text = t })).ToArray();

        List<JsonNode> pending = [];
        await Wait.UntilAsync(
            async () =>
            {
                pending = [.. (await fx.Gateway.ApprovalsAsync("pending", limit: 500)).Where(a => a!["arguments"]!["text"]!.GetValue<string>().StartsWith($"bulk {run} ", StringComparison.Ordinal))!];
                return pending.Count == 100;
            },
            "100 pending approvals",
            TimeSpan.FromSeconds(120),
            pollMs: 200);

        var order = pending.OrderBy(_ => Random.Shared.Next()).ToList();
        var approvers = new[] { fx.Lead1, fx.Lead2 };
        var statuses = new ConcurrentBag<HttpStatusCode>();
        // Both approvers go through the whole list at once: every approval is contested.
        await Task.WhenAll(approvers.Select(async who =>
        {
            foreach (var a in order)
            {
                statuses.Add((await fx.Gateway.DecideAsync(a, who, "approve")).Status);
            }
        }));
        Assert.Equal(100, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(100, statuses.Count(s => s == HttpStatusCode.Conflict));

        var results = await Task.WhenAll(calls);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.NotEqual(true, results[i].IsError);
            // Each agent call got the answer to its own post: the id it received is the one the forum logged for its text.
            var logged = Assert.Single(Posts(texts[i]));
            Assert.Equal(logged["detail"]!["id"]!.GetValue<string>(), results[i].Json().GetProperty("id").GetString());
        }
    }

    [Fact]
    public async Task Webhooks_AreSignedAndRetried_AndADeadReceiverDelaysNothing()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "hook me " + Guid.NewGuid().ToString("N")[..6];
        var started = DateTime.UtcNow;
        var call = client.CallAsync("workplace__post_message", new { topic = "general", text });
        var pending = await PendingForAsync(text);
        // The dead receiver (port 9) is configured too: the approval was still created at once.
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20));
        var id = pending["id"]!.GetValue<string>();

        await Wait.UntilAsync(() => fx.Hooks.Received.Any(r => r.Event == "approval.requested" && r.Body.Contains(id, StringComparison.Ordinal)), "the approval.requested webhook", TimeSpan.FromSeconds(30));
        var delivered = fx.Hooks.Received.First(r => r.Event == "approval.requested" && r.Body.Contains(id, StringComparison.Ordinal));
        Assert.True(delivered.SignatureValid, "the signature verifies with the shared secret");
        Assert.DoesNotContain(text, delivered.Body); // arguments stay out of webhook payloads
        Assert.True(fx.Hooks.Failures >= 2, "the receiver failed its first deliveries, which were retried");

        await fx.Gateway.DecideAsync(pending, fx.Lead1, "deny", reason: "no");
        await call;
        await Wait.UntilAsync(() => fx.Hooks.Received.Any(r => r.Event == "approval.decided" && r.Body.Contains(id, StringComparison.Ordinal) && r.Body.Contains("\"denied\"", StringComparison.Ordinal)), "the approval.decided webhook", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task DecisionApi_Ask_IsPending_AndWaitResolvesWhenApproved()
    {
        var decide = await fx.Gateway.ApiAsync(HttpMethod.Post, "decide", fx.Docs, new { tool = "workplace__post_message", arguments = new { topic = "general", text = "via the decision api" } });
        var body = JsonNode.Parse(await decide.Content.ReadAsStringAsync())!;
        Assert.Equal("ask", body["effect"]!.GetValue<string>());
        Assert.Equal("pending", body["status"]!.GetValue<string>());
        var approvalId = body["approvalId"]!.GetValue<string>();
        var decisionId = body["decisionId"]!.GetValue<string>();

        var approval = await fx.Gateway.ApprovalAsync(approvalId);
        Assert.Equal(HttpStatusCode.OK, (await fx.Gateway.DecideAsync(approval, fx.Lead2, "approve")).Status);
        var waited = JsonNode.Parse(await (await fx.Gateway.ApiAsync(HttpMethod.Get, $"decisions/{decisionId}/wait?timeoutSeconds=30", fx.Docs)).Content.ReadAsStringAsync())!;
        Assert.True(waited["forward"]!.GetValue<bool>());
        Assert.Equal("decided", waited["status"]!.GetValue<string>());
    }

    private Task<Processes.Result> WardenAsync(string token, params string[] args) => Processes.RunAsync("dotnet", [Repo.WardenDll, .. args], new Dictionary<string, string?>
    {
        ["WARDEN_CREDENTIALS"] = fx.Temp.File("no-credentials.json"),
        ["WARDEN_URL"] = fx.Gateway.BaseUri.ToString(),
        ["WARDEN_TOKEN"] = token,
    });

    [Fact]
    public async Task Cli_ListsShowsAndDecides_WithAnApproverToken_AndRefusesAgentsAndTheirOwnCalls()
    {
        var client = await fx.Gateway.ConnectAsync(fx.Agent);
        var text = "from the terminal " + Guid.NewGuid().ToString("N")[..6];
        var call = client.CallAsync("workplace__post_message", new { topic = "general", text });
        var id = (await PendingForAsync(text))["id"]!.GetValue<string>();

        var list = await WardenAsync(fx.Lead1, "approvals", "list", "--json");
        Assert.True(list.ExitCode == 0, list.StdErr);
        Assert.Contains(System.Text.Json.JsonDocument.Parse(list.StdOut).RootElement.GetProperty("approvals").EnumerateArray(), a => a.GetProperty("id").GetString() == id);

        var show = await WardenAsync(fx.Lead1, "approvals", "show", id);
        Assert.True(show.ExitCode == 0, show.StdErr);
        Assert.Contains(text, show.StdOut);
        Assert.Contains("posting-needs-a-human", show.StdOut);

        var asAgent = await WardenAsync(fx.Agent, "approvals", "approve", id);
        Assert.Equal(4, asAgent.ExitCode);
        var own = await WardenAsync(fx.SameName, "approvals", "approve", id);
        Assert.Equal(4, own.ExitCode);
        Assert.Contains("made this call", own.StdErr);
        var badDigest = await WardenAsync(fx.Lead1, "approvals", "approve", id, "--digest", new string('a', 64));
        Assert.NotEqual(0, badDigest.ExitCode);
        Assert.Empty(Posts(text));

        var approve = await WardenAsync(fx.Lead1, "approvals", "approve", id, "--reason", "checked the advice");
        Assert.True(approve.ExitCode == 0, approve.StdErr);
        Assert.Contains("approved", approve.StdOut);
        Assert.NotEqual(true, (await call).IsError);
        Assert.Single(Posts(text));

        var deny = await WardenAsync(fx.Lead1, "approvals", "deny", id, "--reason", "too late");
        Assert.NotEqual(0, deny.ExitCode);
    }

    private async Task<JsonNode> TypeScriptCallAsync(string text)
    {
        var run = await Processes.RunAsync(
            "node",
            [Path.Combine(Repo.NodeClientDir, "client.mjs"), fx.Gateway.McpUri.ToString(), fx.Agent, "workplace__post_message", System.Text.Json.JsonSerializer.Serialize(new { topic = "vpn-help", text })],
            workingDirectory: Repo.NodeClientDir);
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.StdErr}");
        return JsonNode.Parse(run.StdOut)!["result"]!;
    }

    private static string ResultText(JsonNode result) => result["content"]![0]!["text"]!.GetValue<string>();

    [Fact]
    public async Task ForumIncident_TypeScriptClientWithDefaultTimeout_DeferMode_PostsOnlyTheApprovedTextOnce()
    {
        // The incident: an assistant answering a colleague's question posted wrong advice itself. Here the post
        // waits for a team lead; the official TypeScript SDK client (default 60 s request timeout) is answered at once.
        var text = "To reach the VPN, set verify_tls: false " + Guid.NewGuid().ToString("N")[..6];
        var first = await TypeScriptCallAsync(text);
        Assert.True(first["isError"]!.GetValue<bool>());
        Assert.Contains("pending approval apr_", ResultText(first));
        Assert.Empty(Posts(text));

        var pending = await PendingForAsync(text);
        Assert.Equal("defer", pending["mode"]!.GetValue<string>());
        var denied = await fx.Gateway.DecideAsync(pending, fx.Lead1, "deny", reason: "disabling TLS verification exposes credentials");
        Assert.Equal(HttpStatusCode.OK, denied.Status);
        var told = await TypeScriptCallAsync(text);
        Assert.True(told["isError"]!.GetValue<bool>());
        Assert.Contains("disabling TLS verification exposes credentials", ResultText(told));
        Assert.Empty(Posts(text));

        // The corrected answer is approved and posted once, exactly as approved.
        var fixedText = "To reach the VPN, install the corp CA bundle " + Guid.NewGuid().ToString("N")[..6];
        Assert.True((await TypeScriptCallAsync(fixedText))["isError"]!.GetValue<bool>());
        var second = await PendingForAsync(fixedText);
        Assert.Equal(HttpStatusCode.OK, (await fx.Gateway.DecideAsync(second, fx.Lead2, "approve")).Status);
        Assert.Empty(Posts(fixedText));
        var ran = await TypeScriptCallAsync(fixedText);
        Assert.False(ran["isError"]?.GetValue<bool>() ?? false);
        var post = Assert.Single(Posts(fixedText));
        Assert.Equal("vpn-help", post["arguments"]!["topic"]!.GetValue<string>());
        // A further retry asks again: one approval, one post.
        Assert.True((await TypeScriptCallAsync(fixedText))["isError"]!.GetValue<bool>());
        Assert.Single(Posts(fixedText));
    }

    [Fact]
    public async Task ClientConfirmation_IsOptIn_RecordedAsUnverified_AndNeverForOutboundCalls()
    {
        var token = await fx.Gateway.AddAgentAsync("desk-user", "desk");
        var asked = new ConcurrentQueue<string>();
        var options = new McpClientOptions
        {
            Capabilities = new ClientCapabilities { Elicitation = new ElicitationCapability() },
            Handlers = new McpClientHandlers
            {
                ElicitationHandler = (request, _) =>
                {
                    asked.Enqueue(request?.Message ?? "");
                    return ValueTask.FromResult(new ElicitResult { Action = "accept", Content = new Dictionary<string, System.Text.Json.JsonElement> { ["allow"] = System.Text.Json.JsonSerializer.SerializeToElement(true) } });
                },
            },
        };
        var client = await fx.Gateway.ConnectAsync(token, options);

        var update = await client.CallAsync("workplace__update_record", new { table = "tickets", id = "tick-4", fields = new { status = "closed" } });
        Assert.NotEqual(true, update.IsError);
        Assert.Contains(asked, m => m.Contains("workplace__update_record", StringComparison.Ordinal) && m.Contains("tick-4", StringComparison.Ordinal));
        var approval = (await fx.Gateway.ApprovalsAsync()).First(a => a["agent"]!.GetValue<string>() == "desk-user" && a["tool"]!.GetValue<string>() == "update_record");
        Assert.Equal("client user (unverified)", approval["decidedBy"]!.GetValue<string>());
        Assert.Contains(TestUpstreams.OperationsLog(fx.Data), o => o["tool"]!.GetValue<string>() == "update_record" && o["arguments"]!["id"]!.GetValue<string>() == "tick-4");

        // An outbound call is never confirmed at the client: nobody else may approve it, so it is denied at once.
        var text = "desk post " + Guid.NewGuid().ToString("N")[..6];
        var post = await client.CallAsync("workplace__post_message", new { topic = "desk", text });
        Assert.True(post.IsError);
        Assert.Contains("never applies to destructive or outbound", post.Text());
        Assert.Empty(Posts(text));
    }
}

/// <summary>Flood control: a gateway of its own, since the cap is a gateway setting.</summary>
[Trait("Category", "E2E")]
public sealed class ApprovalFloodTests
{
    [Fact]
    public async Task CallsOverThePendingCap_AreDeniedAtOnce_AndAudited()
    {
        using var temp = new TempDir();
        const string policy = """
            version: 1
            default: deny
            rules:
              - id: posts-wait
                match: { server: workplace, tool: post_message }
                effect: ask
                mode: defer
            """;
        await using var gateway = await WardenGateway.StartAsync(TestUpstreams.Workplace("workplace", temp.Sub("workplace")), policy: policy, extraYaml: "approvals:\n  max_pending_per_agent: 2", temp: temp);
        var token = await gateway.AddAgentAsync("chatty");
        var client = await gateway.ConnectAsync(token);
        Assert.Contains("pending approval", (await client.CallAsync("workplace__post_message", new { topic = "t", text = "one" })).Text());
        Assert.Contains("pending approval", (await client.CallAsync("workplace__post_message", new { topic = "t", text = "two" })).Text());
        var third = await client.CallAsync("workplace__post_message", new { topic = "t", text = "three" });
        Assert.True(third.IsError);
        Assert.Contains("already has 2 calls waiting", third.Text());
        Assert.Equal(2, (await gateway.ApprovalsAsync("pending")).Count);

        await Wait.UntilAsync(
            async () => (await (await gateway.ApiAsync(HttpMethod.Get, "audit?kind=approval.refused", gateway.OperatorToken)).Content.ReadAsStringAsync()).Contains("approvals.flood", StringComparison.Ordinal),
            "the refusal in the audit");
    }
}
