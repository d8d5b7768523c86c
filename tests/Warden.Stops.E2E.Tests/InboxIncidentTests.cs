using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using ModelContextProtocol.Protocol;
using Xunit.Abstractions;

namespace Warden.Stops.E2E.Tests;

/// <summary>Issue 6, acceptance 1: the inbox incident, stopped by a person and then by a breaker alone.</summary>
public sealed class InboxIncidentTests(ITestOutputHelper output)
{
    private const int Workers = 64;

    private sealed record Attempt(string Id, long IssuedAt, long AnsweredAt, bool Ok, string Text, bool Threw);

    private static IEnumerable<string> MailIds() => Enumerable.Range(1, 200).Select(i => $"mail-{i:000}");

    /// <summary>64 workers delete one mail per call until the queue is empty.</summary>
    private static async Task<List<Attempt>> DeleteAllAsync(ModelContextProtocol.Client.McpClient[] clients, ConcurrentQueue<string> queue, Func<int, Task>? afterEach = null)
    {
        var attempts = new ConcurrentBag<Attempt>();
        var done = 0;
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var client = clients[w % clients.Length];
            while (queue.TryDequeue(out var id))
            {
                var issued = Stopwatch.GetTimestamp();
                try
                {
                    var r = await client.CallAsync("workplace__delete_mail", new { ids = new[] { id } });
                    attempts.Add(new Attempt(id, issued, Stopwatch.GetTimestamp(), r.IsError != true, r.Text(), false));
                }
                catch (Exception ex)
                {
                    attempts.Add(new Attempt(id, issued, Stopwatch.GetTimestamp(), false, ex.Message, true));
                }

                if (afterEach is not null)
                {
                    await afterEach(Interlocked.Increment(ref done));
                }
            }
        })));
        return [.. attempts];
    }

    private static List<string> DeletedInLog(List<JsonObject> log) =>
        log.Where(l => (string?)l["tool"] == "delete_mail" && (string?)l["outcome"] == "ok")
            .SelectMany(l => l["detail"]!["deleted"]!.AsArray().Select(n => (string)n!))
            .ToList();

    [Fact]
    public async Task A_stop_mid_run_lets_nothing_through_after_its_acknowledgement()
    {
        // Each deletion takes the mailbox 150 ms: still faster than a person could follow four workers, and long
        // enough that the calls in flight at the stop are still running in the mailbox when Warden's cancellation
        // reaches it on a loaded machine (with 20 ms they sometimes finished first, and none logged "cancelled").
        await using var site = await Site.CreateAsync(Site.Policy(), slowMs: 150);
        var app = await site.StartGatewayAsync();
        var url = Site.Url(app);
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Agents.ConnectAsync(url, site.AgentToken)));
        await Agents.WarmAsync(clients[0]);
        using var api = new Api(url, site.OperatorToken);

        var queue = new ConcurrentQueue<string>(MailIds());
        long ackAt = 0;
        JsonNode? ack = null;
        var stopIssued = 0;
        var run = DeleteAllAsync(clients, queue, async n =>
        {
            // Mid-run: after 40 answers, one worker issues the stop (the others keep going).
            if (n >= 40 && Interlocked.Exchange(ref stopIssued, 1) == 0)
            {
                ack = await api.StopAgentAsync(Site.Agent, "deleting the whole inbox");
                Volatile.Write(ref ackAt, Stopwatch.GetTimestamp());
            }
        });
        var attempts = await run;
        Assert.NotNull(ack);

        // On a fast machine every mail may have been asked for before the acknowledgement came back: the agent
        // keeps going after the stop (as in the incident) with more deletions, which must all be refused.
        attempts.AddRange(await DeleteAllAsync(clients, new ConcurrentQueue<string>(Enumerable.Range(201, 32).Select(i => $"mail-{i:000}"))));
        output.WriteLine($"ack: {ack!.ToJsonString()}");

        // The sample logs cancelled calls once they have stopped: give it a moment, then read its own record.
        await Task.Delay(1000);
        var log = site.ReadLog();
        var deleted = DeletedInLog(log);
        var cancelledInLog = log.Count(l => (string?)l["tool"] == "delete_mail" && (string?)l["outcome"] == "cancelled");
        var succeeded = attempts.Where(a => a.Ok).ToList();
        var afterAck = attempts.Where(a => a.IssuedAt > ackAt).ToList();
        var beforeAck = attempts.Where(a => a.IssuedAt <= ackAt).ToList();
        var stopText = $"stopped by {Site.Operator} at ";
        output.WriteLine($"attempts {attempts.Count}; succeeded {succeeded.Count}; deleted in log {deleted.Count}; cancelled in log {cancelledInLog}; ack said cancelled {(int)ack["cancelled"]!}; issued after ack {afterAck.Count}");

        // Every deletion that happened came from a call issued before the acknowledgement.
        var issuedAt = attempts.ToDictionary(a => a.Id, a => a.IssuedAt);
        Assert.All(deleted, id => Assert.True(issuedAt[id] <= ackAt, $"{id} was deleted but its call was issued after the ack"));

        // No deletion result arrived for a call issued after the ack; every such call was told it was stopped.
        Assert.NotEmpty(afterAck);
        Assert.All(afterAck, a =>
        {
            Assert.False(a.Ok, $"{a.Id}: issued after the ack, yet succeeded: {a.Text}");
            Assert.Contains(stopText, a.Text);
            Assert.Contains("deleting the whole inbox", a.Text);
        });

        // What the agents saw succeed is exactly what the mailbox did, apart from calls in flight at the ack whose
        // upstream finished the deletion while Warden was cancelling them (the agent was told "stopped"; the
        // mailbox applied it). Those are calls issued before the ack, never after.
        Assert.All(succeeded, a => Assert.Contains(a.Id, deleted));
        var unseen = deleted.Except(succeeded.Select(a => a.Id)).ToList();
        output.WriteLine($"deletions the agent was told were stopped but the mailbox applied (in flight at the ack): {unseen.Count} [{string.Join(", ", unseen)}]");
        Assert.All(unseen, id =>
        {
            var a = attempts.Single(a => a.Id == id);
            Assert.True(a.IssuedAt <= ackAt);
            Assert.Contains(stopText, a.Text);
            Assert.Contains("the upstream may have completed it", a.Text);
        });
        Assert.True(unseen.Count <= (int)ack["cancelled"]!, $"{unseen.Count} deletions finished while being cancelled, more than were in flight");
        Assert.Equal(deleted.Count, succeeded.Count + unseen.Count);
        Assert.Equal(deleted.Count, deleted.Distinct().Count());

        // The agent saw the stop message, and the calls in flight at the ack were cancelled.
        Assert.Contains(beforeAck, a => a.Text.Contains(stopText, StringComparison.Ordinal));
        Assert.True((int)ack["cancelled"]! > 0, "no call was in flight at the stop");
        Assert.True(cancelledInLog > 0, "the mailbox logged no cancelled deletion");
        Assert.True((bool)ack["recorded"]!);
        Assert.True(deleted.Count < 200, "the stop did not stop anything");

        foreach (var c in clients)
        {
            await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_breaker_alone_halts_deletions_at_its_count_until_an_operator_resumes()
    {
        await using var site = await Site.CreateAsync(
            Site.Policy(limits: "  - {id: delete-breaker, match: {tool: delete_mail}, breaker: 10 in 60s}\n"), slowMs: 20);
        var app = await site.StartGatewayAsync();
        var url = Site.Url(app);
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Agents.ConnectAsync(url, site.AgentToken)));
        await Agents.WarmAsync(clients[0]);
        using var api = new Api(url, site.OperatorToken);

        var attempts = await DeleteAllAsync(clients, new ConcurrentQueue<string>(MailIds()));
        await Task.Delay(1000);
        var deleted = DeletedInLog(site.ReadLog());
        var succeeded = attempts.Where(a => a.Ok).ToList();
        output.WriteLine($"attempts {attempts.Count}; succeeded {succeeded.Count}; deleted in log {deleted.Count}");
        Assert.Equal(10, deleted.Count);
        Assert.Equal(10, succeeded.Count);
        var refused = attempts.Where(a => !a.Ok).ToList();
        Assert.Equal(190, refused.Count);
        Assert.All(refused, a => Assert.Contains("paused", a.Text));
        Assert.Contains(refused, a => a.Text.Contains("paused by breaker:delete-breaker", StringComparison.Ordinal));

        // The pause names the breaker, once.
        var stops = await api.ListAsync();
        output.WriteLine(stops.ToJsonString());
        var pause = Assert.Single(stops);
        Assert.Equal("breaker:delete-breaker", (string?)pause!["by"]);
        Assert.True((bool)pause["pause"]!);
        Assert.Equal(Site.Agent, (string?)pause["target"]);

        // Still paused.
        var more = await clients[0].CallAsync("workplace__delete_mail", new { ids = new[] { "mail-199" } });
        Assert.True(more.IsError);
        Assert.Contains("paused by breaker:delete-breaker", more.Text());

        // An operator resumes: calls go through again.
        var (status, lifted) = await api.SendAsync(HttpMethod.Post, "stops/resume", new { scope = "agent", target = Site.Agent, reason = "checked the run; the rest is fine" });
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Single(lifted!.AsArray());
        var after = await clients[0].CallAsync("workplace__delete_mail", new { ids = new[] { "mail-200" } });
        Assert.False(after.IsError == true, after.Text());
        Assert.Empty(await api.ListAsync());

        foreach (var c in clients)
        {
            await c.DisposeAsync();
        }
    }
}
