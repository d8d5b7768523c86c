using Warden.Core.Approvals;
using Warden.Core.Storage;
using Xunit;

namespace Warden.Storage.Contract;

// Approvals: kept across restarts, changed only by compare-and-set, announced on the change feed.
public abstract partial class StoreContractTests
{
    private static ApprovalRecord Approval(string id, string agent = "forum-helper", string digest = "d1", DateTimeOffset? at = null) => new()
    {
        Id = id,
        Agent = agent,
        Session = agent + "/s1",
        Server = "forum",
        Tool = "post_reply",
        DisplayName = "forum__post_reply",
        ArgumentsJson = """{"text":"héllo"}""",
        Digest = digest,
        PatternDigest = "p-" + digest,
        Rule = "posting-needs-a-human",
        Reason = "posts are public",
        PolicyVersion = "v1",
        ApproverGroups = ["team-leads"],
        TwoPerson = true,
        CreatedAt = at ?? Now(),
        ExpiresAt = (at ?? Now()).AddMinutes(15),
        Owner = "proc-1",
        Findings = [new ApprovalFinding("email", "$.text", 0.9)],
    };

    [Fact]
    public async Task AddApproval_ThenGet_ReturnsEveryField()
    {
        var store = await NewStoreAsync();
        var a = Approval("apr_1");
        await store.AddApprovalAsync(a);
        var read = await store.GetApprovalAsync("apr_1");
        Assert.NotNull(read);
        Assert.Equal(ApprovalJson.Serialize(a), ApprovalJson.Serialize(read!));
        Assert.Null(await store.GetApprovalAsync("apr_missing"));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.AddApprovalAsync(a));
    }

    [Fact]
    public async Task UpdateApproval_IsCompareAndSet_OnTheRevision()
    {
        var store = await NewStoreAsync();
        var a = Approval("apr_1");
        await store.AddApprovalAsync(a);
        var approved = a with { State = ApprovalState.Approved, Revision = 1, DecidedBy = "alice" };
        var denied = a with { State = ApprovalState.Denied, Revision = 1, DecidedBy = "bob" };
        Assert.True(await store.UpdateApprovalAsync(approved, expectedRevision: 0));
        Assert.False(await store.UpdateApprovalAsync(denied, expectedRevision: 0));
        Assert.False(await store.UpdateApprovalAsync(Approval("apr_missing") with { Revision = 1 }, 0));
        var read = await store.GetApprovalAsync("apr_1");
        Assert.Equal(ApprovalState.Approved, read!.State);
        Assert.Equal("alice", read.DecidedBy);
    }

    [Fact]
    public async Task UpdateApproval_FromTwoInstancesAtOnce_OnlyOneWins()
    {
        var location = await NewLocationAsync();
        var one = await OpenInitializedAsync(location);
        var two = await OpenInitializedAsync(location);
        await one.AddApprovalAsync(Approval("apr_1"));
        var wins = 0;
        for (var round = 0; round < 20; round++)
        {
            var current = (await one.GetApprovalAsync("apr_1"))!;
            var next = current with { Revision = current.Revision + 1 };
            var results = await Task.WhenAll(
                Task.Run(async () => await one.UpdateApprovalAsync(next with { DecidedBy = "one" }, current.Revision)),
                Task.Run(async () => await two.UpdateApprovalAsync(next with { DecidedBy = "two" }, current.Revision)));
            Assert.Equal(1, results.Count(r => r));
            wins++;
        }

        Assert.Equal(20, (await two.GetApprovalAsync("apr_1"))!.Revision);
        Assert.Equal(20, wins);
    }

    [Fact]
    public async Task ListApprovals_Filters_AndIsNewestFirst()
    {
        var store = await NewStoreAsync();
        var t0 = Now();
        await store.AddApprovalAsync(Approval("apr_1", "a1", "d1", t0));
        await store.AddApprovalAsync(Approval("apr_2", "a2", "d2", t0.AddSeconds(1)));
        await store.AddApprovalAsync(Approval("apr_3", "a1", "d3", t0.AddSeconds(2)) with { Tool = "delete_post" });
        await store.UpdateApprovalAsync((await store.GetApprovalAsync("apr_2"))! with { State = ApprovalState.Denied, Revision = 1 }, 0);

        Assert.Equal(["apr_3", "apr_2", "apr_1"], (await store.ListApprovalsAsync(new ApprovalQuery())).Select(a => a.Id));
        Assert.Equal(["apr_3", "apr_1"], (await store.ListApprovalsAsync(new ApprovalQuery { State = ApprovalState.Pending })).Select(a => a.Id));
        Assert.Equal(["apr_3", "apr_1"], (await store.ListApprovalsAsync(new ApprovalQuery { Agent = "a1" })).Select(a => a.Id));
        Assert.Equal(["apr_3"], (await store.ListApprovalsAsync(new ApprovalQuery { Tool = "delete_post" })).Select(a => a.Id));
        Assert.Equal(["apr_2"], (await store.ListApprovalsAsync(new ApprovalQuery { Digest = "d2" })).Select(a => a.Id));
        Assert.Equal(["apr_3"], (await store.ListApprovalsAsync(new ApprovalQuery { Limit = 1 })).Select(a => a.Id));
    }

    [Fact]
    public async Task ApproveWithRemember_StoresTheGrant_WhichCanBeRevokedOnce()
    {
        var store = await NewStoreAsync();
        var a = Approval("apr_1");
        await store.AddApprovalAsync(a);
        var now = Now();
        var approved = a with { State = ApprovalState.Approved, Revision = 1, DecidedBy = "alice", DecidedAt = now, RememberId = "rem_1", RememberUntil = now.AddHours(1) };
        Assert.True(await store.UpdateApprovalAsync(approved, 0));

        var grant = Assert.Single(await store.ListGrantsAsync(now));
        Assert.Equal("rem_1", grant.Id);
        Assert.Equal("p-d1", grant.PatternDigest);
        Assert.Equal("alice", grant.By);
        Assert.Empty(await store.ListGrantsAsync(now.AddHours(2)));

        Assert.True(await store.RevokeGrantAsync("rem_1", "bob", now.AddMinutes(1)));
        Assert.False(await store.RevokeGrantAsync("rem_1", "bob", now.AddMinutes(2)));
        Assert.Empty(await store.ListGrantsAsync(now.AddMinutes(3)));
        var all = Assert.Single(await store.ListGrantsAsync(now, includeInactive: true));
        Assert.Equal("bob", all.RevokedBy);
    }

    [Fact]
    public async Task Approvals_SurviveReopening_AndArePublishedToAnotherInstance()
    {
        var location = await NewLocationAsync();
        var writer = await OpenInitializedAsync(location);
        var watcher = await OpenInitializedAsync(location);
        var after = await watcher.GetLatestChangeIdAsync();
        var a = Approval("apr_7");
        await writer.AddApprovalAsync(a);
        await writer.UpdateApprovalAsync(a with { State = ApprovalState.Approved, Revision = 1 }, 0);

        using var cts = new CancellationTokenSource(Patience * 2);
        var seen = new List<StoreChange>();
        await foreach (var change in watcher.WatchAsync(after, cts.Token))
        {
            seen.Add(change);
            if (seen.Count == 2)
            {
                break;
            }
        }

        Assert.All(seen, c => Assert.Equal((ChangeTopics.Approval, "apr_7"), (c.Topic, c.Key)));
        Assert.Equal(["pending", "approved"], seen.Select(c => System.Text.Json.JsonDocument.Parse(c.Payload!).RootElement.GetProperty("state").GetString()));
        await writer.DisposeAsync();
        var reopened = await OpenInitializedAsync(location);
        Assert.Equal(ApprovalState.Approved, (await reopened.GetApprovalAsync("apr_7"))!.State);
    }
}
