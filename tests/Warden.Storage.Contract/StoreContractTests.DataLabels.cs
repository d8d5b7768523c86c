using System.Text.Json;
using Warden.Core.DataGuard;
using Warden.Core.Storage;
using Xunit;

namespace Warden.Storage.Contract;

// Data labels: what an agent's reads of labelled data gave it outlives the process that saw the read, and reaches
// every other process on the store.
public abstract partial class StoreContractTests
{
    private static DataLabelRecord Label(string id, string agent = "inbox-helper", string? session = null, DateTimeOffset? until = null, params ulong[] fingerprints) =>
        new(id, agent, session, ["confidential", "personal"], fingerprints, Now(), until ?? Now().AddHours(24));

    [Fact]
    public async Task AddDataLabel_ThenList_ReturnsItWithEveryField()
    {
        var store = await NewStoreAsync();
        // Hashes use all 64 bits: 0, the top bit and the largest value must come back exactly.
        var record = Label("lbl-1", session: "inbox-helper/s1", fingerprints: [0UL, 1UL, 0x8000_0000_0000_0000UL, ulong.MaxValue, 0x0123_4567_89AB_CDEFUL]);
        var sequence = await store.AddDataLabelAsync(record);
        Assert.True(sequence > 0);

        var listed = Assert.Single(await store.ListDataLabelsAsync(Now()));
        Assert.Equal(record.Id, listed.Id);
        Assert.Equal(record.Agent, listed.Agent);
        Assert.Equal(record.Session, listed.Session);
        Assert.Equal(record.Labels, listed.Labels);
        Assert.Equal(record.Fingerprints, listed.Fingerprints);
        Assert.Equal(record.At, listed.At.ToUniversalTime());
        Assert.Equal(record.Until, listed.Until.ToUniversalTime());
        Assert.Equal(sequence, listed.Sequence);
    }

    [Fact]
    public async Task AddDataLabel_AgentWide_WithoutFingerprints_RoundTrips()
    {
        var store = await NewStoreAsync();
        await store.AddDataLabelAsync(Label("lbl-1"));
        var listed = Assert.Single(await store.ListDataLabelsAsync(Now()));
        Assert.Null(listed.Session);
        Assert.Empty(listed.Fingerprints);
    }

    [Fact]
    public async Task AddDataLabel_SameIdTwice_KeepsOne_SameSequence_PublishesOnce()
    {
        var store = await NewStoreAsync();
        var first = await store.AddDataLabelAsync(Label("lbl-1", fingerprints: [42UL]));
        var changes = await store.GetLatestChangeIdAsync();
        var again = await store.AddDataLabelAsync(Label("lbl-1", fingerprints: [42UL]));
        Assert.Equal(first, again);
        Assert.Single(await store.ListDataLabelsAsync(Now()));
        Assert.Equal(changes, await store.GetLatestChangeIdAsync());
    }

    [Fact]
    public async Task ListDataLabels_LeavesOutLapsedRecords_AndPagesBySequence()
    {
        var store = await NewStoreAsync();
        var now = Now();
        var s1 = await store.AddDataLabelAsync(Label("lbl-1", until: now.AddHours(1)));
        await store.AddDataLabelAsync(Label("lbl-lapsed", until: now));
        var s3 = await store.AddDataLabelAsync(Label("lbl-3", agent: "other", until: now.AddHours(2)));
        var s4 = await store.AddDataLabelAsync(Label("lbl-4", until: now.AddHours(3)));
        AssertStrictlyIncreasing([s1, s3, s4]);

        Assert.Equal(["lbl-1", "lbl-3", "lbl-4"], (await store.ListDataLabelsAsync(now)).Select(r => r.Id));
        Assert.Equal(["lbl-3", "lbl-4"], (await store.ListDataLabelsAsync(now, afterSequence: s1)).Select(r => r.Id));
        Assert.Equal(["lbl-1"], (await store.ListDataLabelsAsync(now, limit: 1)).Select(r => r.Id));
        Assert.Equal(["lbl-3"], (await store.ListDataLabelsAsync(now, afterSequence: s1, limit: 1)).Select(r => r.Id));

        // An hour and a half on, the first has lapsed too.
        Assert.Equal(["lbl-3", "lbl-4"], (await store.ListDataLabelsAsync(now.AddMinutes(90))).Select(r => r.Id));
        Assert.Empty(await store.ListDataLabelsAsync(now.AddHours(3)));
    }

    [Fact]
    public async Task DataLabels_SurviveReopening_AndSequencesKeepGrowingAcrossInstances()
    {
        var location = await NewLocationAsync();
        var first = await OpenInitializedAsync(location);
        var s1 = await first.AddDataLabelAsync(Label("lbl-1", fingerprints: [7UL, 9UL]));
        await first.DisposeAsync();

        var second = await OpenInitializedAsync(location);
        var listed = Assert.Single(await second.ListDataLabelsAsync(Now()));
        Assert.Equal([7UL, 9UL], listed.Fingerprints);
        var other = await OpenInitializedAsync(location);
        var s2 = await other.AddDataLabelAsync(Label("lbl-2"));
        var s3 = await second.AddDataLabelAsync(Label("lbl-3"));
        AssertStrictlyIncreasing([s1, s2, s3]);
        Assert.Equal(["lbl-1", "lbl-2", "lbl-3"], (await other.ListDataLabelsAsync(Now())).Select(r => r.Id));
    }

    [Fact]
    public async Task PruneDataLabels_DeletesOnlyLapsedRecords()
    {
        var store = await NewStoreAsync();
        var now = Now();
        await store.AddDataLabelAsync(Label("lbl-old", until: now.AddMinutes(-1)));
        await store.AddDataLabelAsync(Label("lbl-edge", until: now));
        await store.AddDataLabelAsync(Label("lbl-live", until: now.AddMinutes(1)));
        Assert.Equal(2, await store.PruneDataLabelsAsync(now));
        Assert.Equal(0, await store.PruneDataLabelsAsync(now));
        Assert.Equal(["lbl-live"], (await store.ListDataLabelsAsync(now.AddMinutes(-10))).Select(r => r.Id));
    }

    [Fact]
    public async Task AddDataLabel_IsPublishedOnTheChangeFeed_ToAnotherInstance()
    {
        var location = await NewLocationAsync();
        var writer = await OpenInitializedAsync(location);
        var watcher = await OpenInitializedAsync(location);
        await using var changes = ChangeCollector.Start(watcher, await watcher.GetLatestChangeIdAsync());
        var sequence = await writer.AddDataLabelAsync(Label("lbl-9", agent: "reader"));

        var change = (await changes.NextAsync(Patience * 2)).Change;
        Assert.Equal(ChangeTopics.Label, change.Topic);
        Assert.Equal("reader", change.Key);
        using var payload = JsonDocument.Parse(change.Payload!);
        Assert.Equal("lbl-9", payload.RootElement.GetProperty("id").GetString());
        Assert.Equal(sequence, payload.RootElement.GetProperty("sequence").GetInt64());

        // The watcher reads what the change announced.
        var after = sequence - 1;
        Assert.Equal("lbl-9", Assert.Single(await watcher.ListDataLabelsAsync(Now(), after)).Id);
    }

    [Fact]
    public async Task DataLabels_BeforeInitialize_Throw()
    {
        var store = Open(await NewLocationAsync());
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.AddDataLabelAsync(Label("lbl-1")));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.ListDataLabelsAsync(Now()));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await store.PruneDataLabelsAsync(Now()));
    }
}
