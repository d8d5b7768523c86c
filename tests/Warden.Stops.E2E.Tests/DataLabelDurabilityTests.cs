using System.Diagnostics;
using System.Net;
using Microsoft.Data.Sqlite;
using ModelContextProtocol.Client;
using Warden.Storage.Sqlite;
using Xunit.Abstractions;

namespace Warden.Stops.E2E.Tests;

/// <summary>
/// Issue 9: a label outlives the gateway process that gave it. Real `warden serve` processes in front of the real
/// workplace sample, under the example policy: an agent reads the confidential HR document, and the post that repeats
/// it is refused after a kill -9 and restart on the same data folder, and through a second process on the same store.
/// </summary>
public sealed class DataLabelDurabilityTests(ITestOutputHelper output)
{
    // Re-worded, re-spaced and re-cased, but carrying the document's distinctive values (the new salary, the IBAN).
    private const string Leak = "fyi: frank li gets 104 000 usd from next month, paid to de89370400440532013000";

    private static async Task<Site> SiteAsync()
    {
        var policy = await File.ReadAllTextAsync(Path.Combine(Repo.Root, "examples", "policies", "workplace", "policy.yaml"));
        var site = await Site.CreateAsync(policy, slowMs: 0);
        // Asks answer at once (pending), so a call the data guard lets through shows the normal path in its answer.
        await File.AppendAllTextAsync(site.ConfigPath, "\napprovals:\n  default_mode: defer\n");
        return site;
    }

    private static Child Serve(Site site, int port) =>
        Child.Start(site.Root, null, "serve", "--config", site.ConfigPath, "--listen", $"127.0.0.1:{port}");

    private static async Task WaitUpAsync(Site site, string url, Child serve)
    {
        using var api = new Api(url, site.OperatorToken);
        Assert.True(await Wait.UntilAsync(async () => (await api.SendAsync(HttpMethod.Get, "stops")).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(60)), serve.Output);
    }

    /// <summary>Reads the confidential document once the upstream has started.</summary>
    private static async Task ReadConfidentialAsync(McpClient agent)
    {
        var text = "";
        Assert.True(await Wait.UntilAsync(async () =>
        {
            try
            {
                var read = await agent.CallAsync("workplace__read_document", new { id = "doc-3" });
                text = read.Text();
                return read.IsError != true;
            }
            catch (ModelContextProtocol.McpException ex) when (ex.Message.Contains("still starting", StringComparison.Ordinal))
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60)), text);
        Assert.Contains("104,000", text, StringComparison.Ordinal);
    }

    private static async Task AssertRefusedAsync(McpClient agent, Site site)
    {
        var post = await agent.CallAsync("workplace__post_message", new { topic = "general", text = Leak });
        Assert.True(post.IsError, post.Text());
        Assert.Contains("data-guard:fingerprint", post.Text(), StringComparison.Ordinal);
        var share = await agent.CallAsync("workplace__share_document", new { id = "doc-3", visibility = "public" });
        Assert.True(share.IsError, share.Text());
        Assert.Contains("confidential-stays-inside", share.Text(), StringComparison.Ordinal);

        // The forum saw the read and nothing else.
        var log = site.ReadLog();
        Assert.Contains(log, l => (string?)l["tool"] == "read_document");
        Assert.DoesNotContain(log, l => (string?)l["tool"] is "post_message" or "share_document");
    }

    [Fact]
    public async Task ConfidentialRead_ThenKill9AndRestart_PostFromANewSession_IsStillRefused()
    {
        await using var site = await SiteAsync();
        var port = Ports.Free();
        var url = $"http://127.0.0.1:{port}";
        using (var serve = Serve(site, port))
        {
            await WaitUpAsync(site, url, serve);
            await using var agent = await Agents.ConnectAsync(url, site.AgentToken);
            await ReadConfidentialAsync(agent);
            serve.Kill(); // SIGKILL right after the read: the label must already be durable
            Assert.True(serve.Process.HasExited);
        }

        using var again = Serve(site, port);
        await WaitUpAsync(site, url, again);

        // An operator sees the label the agent carries, and until when (24 h by default), after the restart too.
        using (var api = new Api(url, site.OperatorToken))
        {
            var (status, agents) = await api.SendAsync(HttpMethod.Get, "agents");
            Assert.Equal(HttpStatusCode.OK, status);
            var labels = agents!.AsArray().Single(a => (string?)a!["name"] == Site.Agent)!["status"]!["labels"]!.AsArray();
            var confidential = Assert.Single(labels, l => (string?)l!["label"] == "confidential")!;
            Assert.InRange(confidential["until"]!.GetValue<DateTimeOffset>(), DateTimeOffset.UtcNow.AddHours(23), DateTimeOffset.UtcNow.AddHours(25));
            Assert.Empty(agents.AsArray().Single(a => (string?)a!["name"] == Site.OtherAgent)!["status"]!["labels"]!.AsArray());
        }

        await using var fresh = await Agents.ConnectAsync(url, site.AgentToken);
        await AssertRefusedAsync(fresh, site);

        // Another agent, which never read the document, takes the normal path with the same text.
        await using var other = await Agents.ConnectAsync(url, site.OtherAgentToken);
        var otherPost = await other.CallAsync("workplace__post_message", new { topic = "general", text = Leak });
        Assert.DoesNotContain("data-guard", otherPost.Text(), StringComparison.Ordinal);
        Assert.Contains("posting-needs-a-human", otherPost.Text(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfidentialRead_ThroughOneProcess_PostThroughASecondOnTheSameStore_IsRefused()
    {
        await using var site = await SiteAsync();
        var (portA, portB) = (Ports.Free(), Ports.Free());
        var (urlA, urlB) = ($"http://127.0.0.1:{portA}", $"http://127.0.0.1:{portB}");
        using var a = Serve(site, portA);
        using var b = Serve(site, portB);
        await WaitUpAsync(site, urlA, a);
        await WaitUpAsync(site, urlB, b);

        await using (var viaA = await Agents.ConnectAsync(urlA, site.AgentToken))
        {
            await ReadConfidentialAsync(viaA);
        }

        // B learns of the label through the store's change feed (polled every 50 ms). Ask B's decision API, which
        // decides without calling the upstream, until it refuses the post: that is the propagation time.
        var readAt = Stopwatch.GetTimestamp();
        using var decide = new Api(urlB, site.AgentToken);
        string? rule = null;
        Assert.True(await Wait.UntilAsync(async () =>
        {
            var (_, body) = await decide.SendAsync(HttpMethod.Post, "decide", new { tool = "workplace__post_message", arguments = new { topic = "general", text = Leak } });
            rule = (string?)body?["rule"];
            return rule == "data-guard:fingerprint";
        }, TimeSpan.FromSeconds(10)), $"process B never refused the post; last rule {rule}\n{b.Output}");
        var propagationMs = Stopwatch.GetElapsedTime(readAt).TotalMilliseconds;
        output.WriteLine($"read via A -> B refuses: {propagationMs:0} ms");
        Console.WriteLine($"[bench] data label propagation to a second process: {propagationMs:0} ms");

        // The agent, in a new session on B, posts part of the document and shares it: both refused, nothing reaches the forum.
        await using var viaB = await Agents.ConnectAsync(urlB, site.AgentToken);
        await AssertRefusedAsync(viaB, site);
    }

    [Fact]
    public async Task WhenTheStoreCannotRecordTheLabel_TheResultIsWithheld_TheLabelHolds_AndIsRecordedOnceTheStoreIsBack()
    {
        await using var site = await SiteAsync();
        var app = await site.StartGatewayAsync();
        var url = Site.Url(app);
        await using var agent = await Agents.ConnectAsync(url, site.AgentToken);

        // Another connection holds the write lock: the label's write waits past its bound.
        var locker = new SqliteConnection($"Data Source={Path.Combine(site.DataDir, SqliteStoreOptions.DefaultFileName)};Pooling=False");
        await locker.OpenAsync();
        using (var begin = locker.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE;";
            await begin.ExecuteNonQueryAsync();
        }

        var read = await agent.CallAsync("workplace__read_document", new { id = "doc-3" });
        output.WriteLine(read.Text());
        Assert.True(read.IsError, read.Text());
        Assert.Contains("could not record the label", read.Text(), StringComparison.Ordinal);
        Assert.DoesNotContain("104,000", read.Text(), StringComparison.Ordinal);

        // The label is in force in this process anyway.
        var share = await agent.CallAsync("workplace__share_document", new { id = "doc-3", visibility = "public" });
        Assert.Contains("confidential-stays-inside", share.Text(), StringComparison.Ordinal);

        // The store comes back: the retry records it, so a restart or another process would enforce it too.
        using (var rollback = locker.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK;";
            await rollback.ExecuteNonQueryAsync();
        }

        await locker.DisposeAsync();
        Assert.True(await Wait.UntilAsync(async () =>
        {
            await using var fresh = new SqliteWardenStore(SqliteStoreOptions.ForDataFolder(site.DataDir));
            await fresh.InitializeAsync();
            return (await fresh.ListDataLabelsAsync(DateTimeOffset.UtcNow)).Any(r => r.Agent == Site.Agent && r.Labels.Contains("confidential"));
        }, TimeSpan.FromSeconds(30)), "the label was not recorded after the store came back");
    }
}
