using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Warden.Core.Identity;
using Warden.Core.Storage;
using Xunit;
using Xunit.Abstractions;

namespace Warden.Storage.Contract;

/// <summary>
/// What every <see cref="IWardenStore"/> must do. An implementation's test project derives one class from
/// this and supplies a fresh backing store per test; every inherited test then runs against it.
/// </summary>
/// <remarks>
/// "Another instance on the same location" stands for another process: it must share nothing in memory
/// with the first (its own connections, its own change signalling), so the change feed is exercised the way
/// a second gateway or the CLI would exercise it.
/// </remarks>
public abstract partial class StoreContractTests : IAsyncLifetime
{
    /// <summary>How long a test waits for something that should happen at once (generous for loaded CI).</summary>
    protected static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);

    private readonly List<IWardenStore> _opened = [];
    private readonly List<string> _locations = [];

    /// <summary>Creates the suite.</summary>
    protected StoreContractTests(ITestOutputHelper output) => Output = output;

    /// <summary>Test output, for measurements.</summary>
    protected ITestOutputHelper Output { get; }

    /// <summary>Creates a new, empty backing store (a file path, a database or schema) and returns where it is.</summary>
    protected abstract Task<string> CreateLocationAsync();

    /// <summary>
    /// A new store instance on <paramref name="location"/>, not yet initialized, sharing nothing in memory with
    /// other instances (as if in another process).
    /// </summary>
    protected abstract IWardenStore CreateStore(string location);

    /// <summary>A store instance whose backing cannot be reached or created (missing directory, closed port, ...).</summary>
    protected abstract IWardenStore CreateUnreachableStore();

    /// <summary>Removes a backing store after its test; every instance on it is disposed by then.</summary>
    protected virtual Task DeleteLocationAsync(string location) => Task.CompletedTask;

    /// <inheritdoc />
    public virtual Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public virtual async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }

        foreach (var location in _locations)
        {
            await DeleteLocationAsync(location);
        }
    }

    /// <summary>A fresh location for this test, cleaned up afterwards.</summary>
    protected async Task<string> NewLocationAsync()
    {
        var location = await CreateLocationAsync();
        _locations.Add(location);
        return location;
    }

    /// <summary>A store instance on <paramref name="location"/>, disposed after the test; not initialized.</summary>
    protected IWardenStore Open(string location)
    {
        var store = CreateStore(location);
        _opened.Add(store);
        return store;
    }

    /// <summary>An initialized store instance on <paramref name="location"/>, disposed after the test.</summary>
    protected async Task<IWardenStore> OpenInitializedAsync(string location)
    {
        var store = Open(location);
        await store.InitializeAsync();
        return store;
    }

    /// <summary>An initialized store on a fresh location.</summary>
    protected async Task<IWardenStore> NewStoreAsync() => await OpenInitializedAsync(await NewLocationAsync());

    // ---------------------------------------------------------------- initialization

    [Fact]
    public async Task Initialize_is_idempotent()
    {
        var location = await NewLocationAsync();
        var store = await OpenInitializedAsync(location);
        await store.InitializeAsync();
        await store.SetStateAsync("k", "v");
        await store.InitializeAsync();

        var other = await OpenInitializedAsync(location);
        Assert.Equal("v", await other.GetStateAsync("k"));
    }

    [Fact]
    public async Task Instances_initializing_at_once_all_succeed()
    {
        var location = await NewLocationAsync();
        var stores = Enumerable.Range(0, 6).Select(_ => Open(location)).ToList();
        await Task.WhenAll(stores.Select(s => Task.Run(async () => await s.InitializeAsync())));

        foreach (var (store, i) in stores.Select((s, i) => (s, i)))
        {
            await store.SetStateAsync($"k{i}", "v");
        }

        Assert.Equal("v", await stores[0].GetStateAsync("k5"));
    }

    [Fact]
    public async Task Unreachable_store_reports_StoreUnavailableException_with_the_cause()
    {
        var store = CreateUnreachableStore();
        _opened.Add(store);
        var ex = await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.InitializeAsync());
        Assert.NotNull(ex.InnerException);
        Assert.False(string.IsNullOrWhiteSpace(ex.Message));
    }

    // ---------------------------------------------------------------- principals

    [Fact]
    public async Task Added_principal_is_found_by_its_token_hash_with_groups_and_times()
    {
        var store = await NewStoreAsync();
        var created = new DateTimeOffset(2025, 3, 4, 5, 6, 7, 890, TimeSpan.FromHours(2));
        var token = Tokens.Create(PrincipalKind.Agent);
        var principal = new Principal(PrincipalKind.Agent, "billing-bot", ["finance", "read-only", "ünïcødé ✓", ""], created);

        Assert.True(await store.AddPrincipalAsync(principal, Tokens.Hash(token)));

        var found = await store.FindPrincipalByTokenHashAsync(Tokens.Hash(token));
        Assert.NotNull(found);
        Assert.Equal(PrincipalKind.Agent, found.Kind);
        Assert.Equal("billing-bot", found.Name);
        Assert.Equal(principal.Groups, found.Groups);
        Assert.Equal(created, found.CreatedAt); // same instant; the offset may come back normalized
        Assert.Null(found.RevokedAt);
        Assert.True(found.IsActive);
    }

    [Fact]
    public async Task Principal_without_groups_round_trips()
    {
        var store = await NewStoreAsync();
        var hash = RandomHash();
        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Operator, "ops", [], Now()), hash));
        var found = await store.FindPrincipalByTokenHashAsync(hash);
        Assert.NotNull(found);
        Assert.Empty(found.Groups);
        Assert.Equal(PrincipalKind.Operator, found.Kind);
    }

    [Fact]
    public async Task Unknown_token_hash_finds_nothing()
    {
        var store = await NewStoreAsync();
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "a", [], Now()), RandomHash());
        Assert.Null(await store.FindPrincipalByTokenHashAsync(RandomHash()));
    }

    [Fact]
    public async Task Duplicate_active_name_of_the_same_kind_is_refused()
    {
        var store = await NewStoreAsync();
        var first = RandomHash();
        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "bot", ["g1"], Now()), first));
        var second = RandomHash();
        Assert.False(await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "bot", ["g2"], Now()), second));

        Assert.Null(await store.FindPrincipalByTokenHashAsync(second));
        var found = await store.FindPrincipalByTokenHashAsync(first);
        Assert.Equal(["g1"], found!.Groups);
        Assert.Single(await store.ListPrincipalsAsync(includeRevoked: true));
    }

    [Fact]
    public async Task Same_name_with_another_kind_is_a_different_principal()
    {
        var store = await NewStoreAsync();
        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "alex", [], Now()), RandomHash()));
        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Approver, "alex", [], Now()), RandomHash()));
        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Operator, "alex", [], Now()), RandomHash()));
        Assert.Equal(3, (await store.ListPrincipalsAsync()).Count);
    }

    [Fact]
    public async Task Names_are_case_sensitive()
    {
        var store = await NewStoreAsync();
        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "Bot", [], Now()), RandomHash()));
        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "bot", [], Now()), RandomHash()));
    }

    [Fact]
    public async Task Reusing_a_token_hash_is_refused_even_after_revocation()
    {
        var store = await NewStoreAsync();
        var hash = RandomHash();
        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "a", [], Now()), hash));
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "b", [], Now()), hash));

        Assert.True(await store.RevokePrincipalAsync(PrincipalKind.Agent, "a", Now()));
        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "a", [], Now()), hash));
        Assert.Null(await store.FindPrincipalByTokenHashAsync(hash));
    }

    [Fact]
    public async Task Revoked_principal_is_never_found_and_is_kept_as_history()
    {
        var store = await NewStoreAsync();
        var hash = RandomHash();
        var revokedAt = new DateTimeOffset(2025, 6, 1, 12, 0, 0, 123, TimeSpan.Zero);
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Approver, "dana", ["leads"], Now()), hash);

        Assert.True(await store.RevokePrincipalAsync(PrincipalKind.Approver, "dana", revokedAt));

        Assert.Null(await store.FindPrincipalByTokenHashAsync(hash));
        Assert.Empty(await store.ListPrincipalsAsync());
        var history = Assert.Single(await store.ListPrincipalsAsync(includeRevoked: true));
        Assert.Equal("dana", history.Name);
        Assert.Equal(revokedAt, history.RevokedAt);
        Assert.False(history.IsActive);
        Assert.Equal(["leads"], history.Groups);
    }

    [Fact]
    public async Task Revoking_twice_or_an_unknown_principal_returns_false()
    {
        var store = await NewStoreAsync();
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "a", [], Now()), RandomHash());
        Assert.False(await store.RevokePrincipalAsync(PrincipalKind.Agent, "nobody", Now()));
        Assert.False(await store.RevokePrincipalAsync(PrincipalKind.Operator, "a", Now()));
        Assert.True(await store.RevokePrincipalAsync(PrincipalKind.Agent, "a", Now()));
        Assert.False(await store.RevokePrincipalAsync(PrincipalKind.Agent, "a", Now()));
    }

    [Fact]
    public async Task A_revoked_name_can_be_added_again_with_a_new_token()
    {
        var store = await NewStoreAsync();
        var oldHash = RandomHash();
        var newHash = RandomHash();
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "bot", ["v1"], Now()), oldHash);
        await store.RevokePrincipalAsync(PrincipalKind.Agent, "bot", Now());

        Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "bot", ["v2"], Now()), newHash));

        Assert.Null(await store.FindPrincipalByTokenHashAsync(oldHash));
        Assert.Equal(["v2"], (await store.FindPrincipalByTokenHashAsync(newHash))!.Groups);
        Assert.Single(await store.ListPrincipalsAsync());
        var all = await store.ListPrincipalsAsync(includeRevoked: true);
        Assert.Equal(2, all.Count);
        Assert.False(all[0].IsActive); // oldest first among equal kind and name
        Assert.True(all[1].IsActive);

        // Revoking acts on the active one only.
        Assert.True(await store.RevokePrincipalAsync(PrincipalKind.Agent, "bot", Now()));
        Assert.Empty(await store.ListPrincipalsAsync());
        Assert.Equal(2, (await store.ListPrincipalsAsync(includeRevoked: true)).Count);
    }

    [Fact]
    public async Task List_filters_by_kind_and_orders_by_kind_then_name()
    {
        var store = await NewStoreAsync();
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Approver, "zoe", [], Now()), RandomHash());
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "b-bot", [], Now()), RandomHash());
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Operator, "root", [], Now()), RandomHash());
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "a-bot", [], Now()), RandomHash());
        await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "c-bot", [], Now()), RandomHash());
        await store.RevokePrincipalAsync(PrincipalKind.Agent, "c-bot", Now());

        Assert.Equal(
            ["Agent/a-bot", "Agent/b-bot", "Operator/root", "Approver/zoe"],
            (await store.ListPrincipalsAsync()).Select(p => $"{p.Kind}/{p.Name}"));
        Assert.Equal(["a-bot", "b-bot"], (await store.ListPrincipalsAsync(PrincipalKind.Agent)).Select(p => p.Name));
        Assert.Equal(
            ["a-bot", "b-bot", "c-bot"],
            (await store.ListPrincipalsAsync(PrincipalKind.Agent, includeRevoked: true)).Select(p => p.Name));
        Assert.Equal(["zoe"], (await store.ListPrincipalsAsync(PrincipalKind.Approver)).Select(p => p.Name));
    }

    [Fact]
    public async Task Principals_added_by_one_instance_are_found_by_another()
    {
        var location = await NewLocationAsync();
        var first = await OpenInitializedAsync(location);
        var second = await OpenInitializedAsync(location);
        var hash = RandomHash();
        await first.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "x", [], Now()), hash);
        Assert.Equal("x", (await second.FindPrincipalByTokenHashAsync(hash))?.Name);
        await second.RevokePrincipalAsync(PrincipalKind.Agent, "x", Now());
        Assert.Null(await first.FindPrincipalByTokenHashAsync(hash));
    }

    [Fact]
    public async Task Racing_adds_of_one_name_from_two_instances_admit_exactly_one()
    {
        var location = await NewLocationAsync();
        var first = await OpenInitializedAsync(location);
        var second = await OpenInitializedAsync(location);
        for (var round = 0; round < 10; round++)
        {
            var name = $"bot-{round}";
            var results = await Task.WhenAll(
                Task.Run(async () => await first.AddPrincipalAsync(new Principal(PrincipalKind.Agent, name, [], Now()), RandomHash())),
                Task.Run(async () => await second.AddPrincipalAsync(new Principal(PrincipalKind.Agent, name, [], Now()), RandomHash())));
            Assert.Single(results, r => r);
        }

        Assert.Equal(10, (await first.ListPrincipalsAsync()).Count);
    }

    // ---------------------------------------------------------------- state

    [Fact]
    public async Task State_is_missing_then_set_then_overwritten()
    {
        var store = await NewStoreAsync();
        Assert.Null(await store.GetStateAsync("policy.version"));

        await store.SetStateAsync("policy.version", "1");
        Assert.Equal("1", await store.GetStateAsync("policy.version"));

        await store.SetStateAsync("policy.version", "2");
        Assert.Equal("2", await store.GetStateAsync("policy.version"));

        await store.SetStateAsync("other", "");
        Assert.Equal("", await store.GetStateAsync("other"));
        Assert.Equal("2", await store.GetStateAsync("policy.version"));
    }

    [Fact]
    public async Task State_keeps_large_and_unicode_values_exactly()
    {
        var store = await NewStoreAsync();
        var value = string.Concat(Enumerable.Repeat("{\"ünï\":\"✓ 😀\"}\n", 20_000));
        await store.SetStateAsync("big", value);
        Assert.Equal(value, await store.GetStateAsync("big"));
    }

    [Fact]
    public async Task State_written_by_one_instance_is_read_by_another()
    {
        var location = await NewLocationAsync();
        var first = await OpenInitializedAsync(location);
        var second = await OpenInitializedAsync(location);
        await first.SetStateAsync("k", "from-first");
        Assert.Equal("from-first", await second.GetStateAsync("k"));
        await second.SetStateAsync("k", "from-second");
        Assert.Equal("from-second", await first.GetStateAsync("k"));
    }

    // ---------------------------------------------------------------- change feed

    [Fact]
    public async Task Empty_feed_has_latest_id_zero()
    {
        var store = await NewStoreAsync();
        Assert.Equal(0, await store.GetLatestChangeIdAsync());
    }

    [Fact]
    public async Task Published_ids_increase_and_latest_follows()
    {
        var store = await NewStoreAsync();
        var ids = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await store.PublishChangeAsync(ChangeTopics.Policy, $"v{i}", null));
            Assert.Equal(ids[^1], await store.GetLatestChangeIdAsync());
        }

        Assert.True(ids[0] > 0);
        AssertStrictlyIncreasing(ids);
    }

    [Fact]
    public async Task Watch_yields_existing_changes_in_order_with_their_fields_then_new_ones()
    {
        var store = await NewStoreAsync();
        var before = DateTimeOffset.UtcNow;
        var a = await store.PublishChangeAsync(ChangeTopics.Stop, "agent-1", "{\"reason\":\"test\"}");
        var b = await store.PublishChangeAsync(ChangeTopics.Approval, "apr-7", null);
        var after = DateTimeOffset.UtcNow;

        await using var watch = ChangeCollector.Start(store, 0);
        var existing = await watch.TakeAsync(2, Patience);
        Assert.Equal([a, b], existing.Select(c => c.Id));
        Assert.Equal(ChangeTopics.Stop, existing[0].Topic);
        Assert.Equal("agent-1", existing[0].Key);
        Assert.Equal("{\"reason\":\"test\"}", existing[0].Payload);
        Assert.Equal(ChangeTopics.Approval, existing[1].Topic);
        Assert.Equal("apr-7", existing[1].Key);
        Assert.Null(existing[1].Payload);
        foreach (var change in existing)
        {
            Assert.InRange(change.At, before.AddSeconds(-5), after.AddSeconds(5));
        }

        var c = await store.PublishChangeAsync(ChangeTopics.Principal, "agent/bot", null);
        Assert.Equal(c, (await watch.NextAsync(Patience)).Change.Id);
    }

    [Fact]
    public async Task Watch_starts_strictly_after_afterId()
    {
        var store = await NewStoreAsync();
        var ids = new List<long>();
        for (var i = 0; i < 4; i++)
        {
            ids.Add(await store.PublishChangeAsync(ChangeTopics.Policy, $"v{i}", null));
        }

        await using (var fromSecond = ChangeCollector.Start(store, ids[1]))
        {
            Assert.Equal(ids.Skip(2), (await fromSecond.TakeAsync(2, Patience)).Select(c => c.Id));
        }

        // From the latest id: only what is published afterwards.
        var latest = await store.GetLatestChangeIdAsync();
        await using var fromLatest = ChangeCollector.Start(store, latest);
        await Task.Delay(200);
        Assert.True(fromLatest.IsEmpty);
        var next = await store.PublishChangeAsync(ChangeTopics.Policy, "v4", null);
        Assert.Equal(next, (await fromLatest.NextAsync(Patience)).Change.Id);
    }

    [Fact]
    public async Task Watch_yields_many_existing_changes_without_gaps()
    {
        var store = await NewStoreAsync();
        var ids = new List<long>();
        for (var i = 0; i < 600; i++)
        {
            ids.Add(await store.PublishChangeAsync(ChangeTopics.Approval, i.ToString(CultureInfo.InvariantCulture), null));
        }

        await using var watch = ChangeCollector.Start(store, 0);
        Assert.Equal(ids, (await watch.TakeAsync(ids.Count, Patience)).Select(c => c.Id));
    }

    [Fact]
    public async Task Several_watchers_each_see_every_change()
    {
        var store = await NewStoreAsync();
        await using var w1 = ChangeCollector.Start(store, 0);
        await using var w2 = ChangeCollector.Start(store, 0);
        await using var w3 = ChangeCollector.Start(store, 0);
        var ids = new List<long>();
        for (var i = 0; i < 10; i++)
        {
            ids.Add(await store.PublishChangeAsync(ChangeTopics.Stop, $"a{i}", null));
        }

        foreach (var watcher in new[] { w1, w2, w3 })
        {
            Assert.Equal(ids, (await watcher.TakeAsync(ids.Count, Patience)).Select(c => c.Id));
        }
    }

    [Fact]
    public async Task Change_published_by_another_instance_reaches_a_watcher_quickly()
    {
        var location = await NewLocationAsync();
        var watching = await OpenInitializedAsync(location);
        var publishing = await OpenInitializedAsync(location);

        await using var watch = ChangeCollector.Start(watching, 0);
        // Warm up: the watcher is running once it has seen this one.
        var warmUp = await publishing.PublishChangeAsync(ChangeTopics.Policy, "warm-up", null);
        Assert.Equal(warmUp, (await watch.NextAsync(Patience)).Change.Id);

        var latencies = new List<double>();
        var random = new Random(42);
        for (var i = 0; i < 20; i++)
        {
            await Task.Delay(random.Next(0, 60)); // land at different points of the poll cycle
            var started = Stopwatch.GetTimestamp();
            var id = await publishing.PublishChangeAsync(ChangeTopics.Stop, $"agent-{i}", null);
            var received = await watch.NextAsync(Patience);
            Assert.Equal(id, received.Change.Id);
            latencies.Add(Stopwatch.GetElapsedTime(started, received.ReceivedAt).TotalMilliseconds);
        }

        ReportLatency("another instance → watcher", latencies);
        Assert.All(latencies, l => Assert.True(l < Patience.TotalMilliseconds));
    }

    [Fact]
    public async Task Change_published_by_the_same_instance_reaches_its_watcher_at_once()
    {
        var store = await NewStoreAsync();
        await using var watch = ChangeCollector.Start(store, 0);
        var warmUp = await store.PublishChangeAsync(ChangeTopics.Policy, "warm-up", null);
        Assert.Equal(warmUp, (await watch.NextAsync(Patience)).Change.Id);

        var latencies = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var id = await store.PublishChangeAsync(ChangeTopics.Stop, $"agent-{i}", null);
            var received = await watch.NextAsync(Patience);
            Assert.Equal(id, received.Change.Id);
            latencies.Add(Stopwatch.GetElapsedTime(started, received.ReceivedAt).TotalMilliseconds);
        }

        ReportLatency("same instance → watcher", latencies);
        Assert.All(latencies, l => Assert.True(l < Patience.TotalMilliseconds));
    }

    [Fact]
    public async Task Concurrent_publishers_on_two_instances_get_unique_increasing_ids()
    {
        var location = await NewLocationAsync();
        var first = await OpenInitializedAsync(location);
        var second = await OpenInitializedAsync(location);
        var observer = await OpenInitializedAsync(location);
        await using var watch = ChangeCollector.Start(observer, 0);

        const int PublishersPerInstance = 3;
        const int ChangesPerPublisher = 30;
        var publishers = new[] { first, second }
            .SelectMany(store => Enumerable.Range(0, PublishersPerInstance).Select(p => (store, p)))
            .Select(x => Task.Run(async () =>
            {
                var ids = new List<long>();
                for (var i = 0; i < ChangesPerPublisher; i++)
                {
                    ids.Add(await x.store.PublishChangeAsync(ChangeTopics.Approval, $"{x.p}-{i}", null));
                }

                return ids;
            }))
            .ToList();
        var perPublisher = await Task.WhenAll(publishers);

        foreach (var ids in perPublisher)
        {
            AssertStrictlyIncreasing(ids); // later publish, larger id
        }

        var all = perPublisher.SelectMany(ids => ids).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.Equal(all.Max(), await first.GetLatestChangeIdAsync());
        Assert.Equal(all.Max(), await second.GetLatestChangeIdAsync());

        var seen = (await watch.TakeAsync(all.Count, Patience)).Select(c => c.Id).ToList();
        AssertStrictlyIncreasing(seen);
        Assert.Equal(all.Order(), seen);
    }

    [Fact]
    public async Task Cancelling_a_watch_ends_the_enumeration_without_an_exception()
    {
        var store = await NewStoreAsync();
        var id = await store.PublishChangeAsync(ChangeTopics.Stop, "a", null);
        var watch = ChangeCollector.Start(store, 0);
        Assert.Equal(id, (await watch.NextAsync(Patience)).Change.Id);

        var stopping = watch.StopAsync();
        Assert.Same(stopping, await Task.WhenAny(stopping, Task.Delay(Patience)));
        await stopping; // no exception
        await watch.DisposeAsync();

        // The store is still fine, and a new watcher starts where asked.
        var next = await store.PublishChangeAsync(ChangeTopics.Stop, "b", null);
        await using var again = ChangeCollector.Start(store, id);
        Assert.Equal(next, (await again.NextAsync(Patience)).Change.Id);
    }

    [Fact]
    public async Task Watch_with_an_already_cancelled_token_yields_nothing_and_ends()
    {
        var store = await NewStoreAsync();
        await store.PublishChangeAsync(ChangeTopics.Stop, "a", null);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var count = 0;
        await foreach (var unused in store.WatchAsync(0, cts.Token))
        {
            count++;
        }

        Assert.Equal(0, count);
    }

    [Fact]
    public async Task Cancelling_via_WithCancellation_also_ends_cleanly()
    {
        var store = await NewStoreAsync();
        await store.PublishChangeAsync(ChangeTopics.Stop, "a", null);
        using var cts = new CancellationTokenSource();
        var seen = 0;
        await foreach (var unused in store.WatchAsync(0).WithCancellation(cts.Token))
        {
            seen++;
            await cts.CancelAsync();
        }

        Assert.Equal(1, seen);
    }

    // ---------------------------------------------------------------- durability

    [Fact]
    public async Task Everything_persists_when_the_store_is_reopened()
    {
        var location = await NewLocationAsync();
        var hash = RandomHash();
        var revokedHash = RandomHash();
        long lastId;
        var store = CreateStore(location);
        await using (store)
        {
            await store.InitializeAsync();
            await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "kept", ["g"], Now()), hash);
            await store.AddPrincipalAsync(new Principal(PrincipalKind.Agent, "gone", [], Now()), revokedHash);
            await store.RevokePrincipalAsync(PrincipalKind.Agent, "gone", Now());
            await store.SetStateAsync("policy.version", "42");
            await store.PublishChangeAsync(ChangeTopics.Policy, "41", null);
            lastId = await store.PublishChangeAsync(ChangeTopics.Policy, "42", "{}");
        }

        var reopened = await OpenInitializedAsync(location);
        Assert.Equal(["g"], (await reopened.FindPrincipalByTokenHashAsync(hash))!.Groups);
        Assert.Null(await reopened.FindPrincipalByTokenHashAsync(revokedHash));
        Assert.Equal(2, (await reopened.ListPrincipalsAsync(includeRevoked: true)).Count);
        Assert.Equal("42", await reopened.GetStateAsync("policy.version"));
        Assert.Equal(lastId, await reopened.GetLatestChangeIdAsync());

        await using var watch = ChangeCollector.Start(reopened, 0);
        var replay = await watch.TakeAsync(2, Patience);
        Assert.Equal(["41", "42"], replay.Select(c => c.Key));
        Assert.Equal("{}", replay[1].Payload);

        Assert.True(await reopened.PublishChangeAsync(ChangeTopics.Policy, "43", null) > lastId);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>A random 32-byte token hash.</summary>
    protected static byte[] RandomHash() => RandomNumberGenerator.GetBytes(Tokens.HashLength);

    /// <summary>Now, truncated to whole milliseconds (the precision every store keeps).</summary>
    protected static DateTimeOffset Now()
    {
        var now = DateTimeOffset.UtcNow;
        return now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMillisecond));
    }

    /// <summary>Fails unless each id is larger than the one before.</summary>
    protected static void AssertStrictlyIncreasing(IReadOnlyList<long> ids)
    {
        for (var i = 1; i < ids.Count; i++)
        {
            Assert.True(ids[i] > ids[i - 1], $"id {ids[i]} at {i} does not follow {ids[i - 1]}");
        }
    }

    /// <summary>Prints min / median / p95 / max of latencies in milliseconds.</summary>
    protected void ReportLatency(string what, IReadOnlyList<double> milliseconds)
    {
        var sorted = milliseconds.Order().ToList();
        var line = string.Create(
            CultureInfo.InvariantCulture,
            $"{what}: n={sorted.Count} min={sorted[0]:F1} ms median={sorted[sorted.Count / 2]:F1} ms p95={sorted[(int)Math.Ceiling(sorted.Count * 0.95) - 1]:F1} ms max={sorted[^1]:F1} ms");
        Output.WriteLine(line);
        Console.WriteLine(line);
    }
}
