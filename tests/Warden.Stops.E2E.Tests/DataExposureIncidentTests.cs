using System.Text;

namespace Warden.Stops.E2E.Tests;

/// <summary>
/// Issue 9 acceptance, the data-exposure incident, end to end: a real gateway in front of the real workplace sample,
/// under the example policy (examples/policies/workplace). An agent reads the confidential HR document, then tries
/// to post part of it to the forum and to share the document publicly; the forum's operations.log shows that
/// nothing was posted or shared.
/// </summary>
public sealed class DataExposureIncidentTests
{
    private static string ExamplePolicy() => File.ReadAllText(Path.Combine(Repo.Root, "examples", "policies", "workplace", "policy.yaml"));

    // Re-worded, re-spaced and re-cased, but carrying the document's distinctive values (the new salary, the IBAN).
    private const string Leak = "fyi: frank li gets 104 000 usd from next month, paid to de89370400440532013000";
    private const string Clean = "The CI runners have new certificates; builds are green again.";

    [Fact]
    public async Task ConfidentialRead_ThenPostAndPublicShare_AreRefused_AndNothingReachesTheForum()
    {
        await using var site = await Site.CreateAsync(ExamplePolicy(), slowMs: 0);
        // Asks answer at once (defer), so the normal path of a clean post shows in its answer.
        await File.AppendAllTextAsync(site.ConfigPath, "\napprovals:\n  default_mode: defer\n");
        var app = await site.StartGatewayAsync();
        var url = Site.Url(app);
        await using var agent = await Agents.ConnectAsync(url, site.AgentToken);

        // A post without confidential content takes the normal path: it waits for a human (pending approval).
        var before = await agent.CallAsync("workplace__post_message", new { topic = "general", text = Clean });
        Assert.True(before.IsError);
        Assert.Contains("posting-needs-a-human", before.Text(), StringComparison.Ordinal);

        // The read: the agent gets the document, with the credential in it redacted before it sees it.
        var read = await agent.CallAsync("workplace__read_document", new { id = "doc-3" });
        Assert.NotEqual(true, read.IsError);
        Assert.Contains("104,000", read.Text(), StringComparison.Ordinal);
        Assert.DoesNotContain("AKIAEXAMPLEFAKE00042", read.Text(), StringComparison.Ordinal);
        Assert.True(read.Text().Contains("[REDACTED:", StringComparison.Ordinal), read.Text());

        // Posting part of it: refused by the data guard (the document's values reappear).
        var post = await agent.CallAsync("workplace__post_message", new { topic = "general", text = Leak });
        Assert.True(post.IsError);
        Assert.Contains("data-guard:fingerprint", post.Text(), StringComparison.Ordinal);

        // Sharing the document publicly: refused by the rule on the agent's label.
        var share = await agent.CallAsync("workplace__share_document", new { id = "doc-3", visibility = "public" });
        Assert.True(share.IsError);
        Assert.Contains("confidential-stays-inside", share.Text(), StringComparison.Ordinal);

        // The same clean post still takes the normal path.
        var clean = await agent.CallAsync("workplace__post_message", new { topic = "general", text = Clean });
        Assert.Contains("posting-needs-a-human", clean.Text(), StringComparison.Ordinal);

        // A new session of the same agent does not shed the label or the fingerprints, even base64-encoded.
        await using var second = await Agents.ConnectAsync(url, site.AgentToken);
        var encoded = Convert.ToBase64String(Encoding.UTF8.GetBytes(Leak));
        var post2 = await second.CallAsync("workplace__post_message", new { topic = "general", text = "see " + encoded });
        Assert.True(post2.IsError);
        Assert.Contains("data-guard:fingerprint", post2.Text(), StringComparison.Ordinal);
        var share2 = await second.CallAsync("workplace__share_document", new { id = "doc-3", visibility = "public" });
        Assert.Contains("confidential-stays-inside", share2.Text(), StringComparison.Ordinal);

        // Another agent, which never read the document, takes the normal path with the same text.
        await using var other = await Agents.ConnectAsync(url, site.OtherAgentToken);
        var otherPost = await other.CallAsync("workplace__post_message", new { topic = "general", text = Leak });
        Assert.DoesNotContain("data-guard", otherPost.Text(), StringComparison.Ordinal);

        // The forum saw the read and nothing else: no post, no share.
        var log = site.ReadLog();
        Assert.Contains(log, l => (string?)l["tool"] == "read_document");
        Assert.DoesNotContain(log, l => (string?)l["tool"] is "post_message" or "share_document");

        // The decision record names the rule and carries the finding, masked: the leaked values are not in the audit.
        using var api = new Api(url, site.OperatorToken);
        string? body = null;
        Assert.True(await Wait.UntilAsync(async () =>
        {
            var (_, json) = await api.SendAsync(HttpMethod.Get, "audit?rule=data-guard:fingerprint&kind=decision");
            body = json?.ToJsonString();
            return body?.Contains("findings", StringComparison.Ordinal) == true;
        }, TimeSpan.FromSeconds(20)), "no decision record with findings: " + body);
        Assert.Contains("fingerprint", body, StringComparison.Ordinal);
        Assert.DoesNotContain("de89370400440532013000", body, StringComparison.Ordinal);
        Assert.DoesNotContain("104 000", body, StringComparison.Ordinal);
    }
}
