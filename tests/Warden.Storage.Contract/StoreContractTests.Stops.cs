using Warden.Core.Storage;
using Warden.Core.Stops;
using Xunit;

namespace Warden.Storage.Contract;

// Stops: every store keeps them across restarts and announces them on the change feed.
public abstract partial class StoreContractTests
{
    private static StopRecord Stop(string id, StopScope scope = StopScope.Agent, string target = "inbox-helper", bool pause = false) =>
        new(id, scope, target, "alice", "runaway deletions", Now(), pause);

    [Fact]
    public async Task AddStop_ThenList_ReturnsItWithEveryField()
    {
        var store = await NewStoreAsync();
        var stop = Stop("stp-1", pause: true);
        await store.AddStopAsync(stop);
        var listed = Assert.Single(await store.ListStopsAsync());
        Assert.Equal(stop.Id, listed.Id);
        Assert.Equal(stop.Scope, listed.Scope);
        Assert.Equal(stop.Target, listed.Target);
        Assert.Equal(stop.By, listed.By);
        Assert.Equal(stop.Reason, listed.Reason);
        Assert.True(listed.IsPause);
        Assert.Equal(stop.At, listed.At.ToUniversalTime());
    }

    [Fact]
    public async Task AddStop_SameIdTwice_KeepsOne()
    {
        var store = await NewStoreAsync();
        await store.AddStopAsync(Stop("stp-1"));
        await store.AddStopAsync(Stop("stp-1"));
        Assert.Single(await store.ListStopsAsync());
    }

    [Fact]
    public async Task LiftStop_RemovesItFromTheList_AndSecondLiftReturnsFalse()
    {
        var store = await NewStoreAsync();
        await store.AddStopAsync(Stop("stp-1"));
        await store.AddStopAsync(Stop("stp-2", StopScope.All, ""));
        Assert.True(await store.LiftStopAsync("stp-1", "bob", "checked", Now()));
        Assert.False(await store.LiftStopAsync("stp-1", "bob", "again", Now()));
        Assert.False(await store.LiftStopAsync("missing", "bob", "none", Now()));
        Assert.Equal("stp-2", Assert.Single(await store.ListStopsAsync()).Id);
    }

    [Fact]
    public async Task Stops_SurviveReopening()
    {
        var location = await NewLocationAsync();
        var first = await OpenInitializedAsync(location);
        await first.AddStopAsync(Stop("stp-1"));
        await first.DisposeAsync();
        var second = await OpenInitializedAsync(location);
        Assert.Equal("stp-1", Assert.Single(await second.ListStopsAsync()).Id);
    }

    [Fact]
    public async Task StopAndResume_ArePublishedOnTheChangeFeed_ToAnotherInstance()
    {
        var location = await NewLocationAsync();
        var writer = await OpenInitializedAsync(location);
        var watcher = await OpenInitializedAsync(location);
        var after = await watcher.GetLatestChangeIdAsync();
        await writer.AddStopAsync(Stop("stp-9"));
        await writer.LiftStopAsync("stp-9", "bob", "fine", Now());

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

        Assert.All(seen, c => Assert.Equal(ChangeTopics.Stop, c.Topic));
        Assert.All(seen, c => Assert.Equal("stp-9", c.Key));
        Assert.Equal(["stopped", "resumed"], seen.Select(c => System.Text.Json.JsonDocument.Parse(c.Payload!).RootElement.GetProperty("event").GetString()));
        Assert.All(seen, c => Assert.Equal("inbox-helper", System.Text.Json.JsonDocument.Parse(c.Payload!).RootElement.GetProperty("target").GetString()));
    }
}
