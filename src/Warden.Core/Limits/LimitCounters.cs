using System.Collections.Concurrent;
using Warden.Core.Pipeline;

namespace Warden.Core.Limits;

/// <summary>The verdict of the limits on one call.</summary>
/// <param name="Exceeded">The limit that refused the call, or null.</param>
/// <param name="Message">Why, for the agent.</param>
public readonly record struct LimitVerdict(LimitRule? Exceeded, string? Message)
{
    /// <summary>No limit refused the call.</summary>
    public bool Ok => Exceeded is null;
}

/// <summary>
/// The counts behind every limit, kept in memory per (limit, agent or session) and read with an injected
/// clock, so windows and refills are tested without sleeping. Counts are kept by limit id, so a policy reload
/// that keeps a limit keeps its count.
/// </summary>
public sealed class LimitCounters(TimeProvider time)
{
    // By limit id, then by agent, session or "" (global). Two levels so the hot path hashes one short string
    // (the key) and finds the limit's table through a reference cached on the LimitRule.
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, Counter>> _counters = new(StringComparer.Ordinal);

    /// <summary>Checks every limit that covers the call and, when none refuses it, counts the call against them.</summary>
    /// <param name="limits">The limits that apply to the call (already matched).</param>
    /// <param name="call">The call.</param>
    /// <param name="release">
    /// Set when a concurrency limit counted the call: dispose it when the call ends (once or more; only the first
    /// counts). It is the call itself, which holds its slots, so counting allocates nothing.
    /// </param>
    public LimitVerdict Acquire(IReadOnlyList<LimitRule> limits, CallContext call, out IDisposable? release)
    {
        release = null;
        if (limits.Count == 0)
        {
            return default;
        }

        var now = time.GetTimestamp();
        Counter? held = null;
        Counter[]? heldMore = null;
        for (var i = 0; i < limits.Count; i++)
        {
            var limit = limits[i];
            var counter = CounterFor(limit, call);
            if (!counter.TryTake(limit, limit.TimingFor(time.TimestampFrequency), now))
            {
                // All or nothing: give back what earlier limits took for this call.
                for (var j = 0; j < i; j++)
                {
                    CounterFor(limits[j], call).GiveBack(limits[j]);
                }

                return new LimitVerdict(limit, $"limit {limit.Id} exceeded ({limit.Describe()} per {limit.Per.ToString().ToLowerInvariant()})");
            }

            if (limit.Kind == LimitKind.Concurrency)
            {
                // Only concurrency caps are handed back when the call ends; the rest count the call as made.
                if (held is null)
                {
                    held = counter;
                }
                else
                {
                    heldMore = heldMore is null ? [counter] : [.. heldMore, counter];
                }
            }
        }

        if (held is not null)
        {
            // Normally one acquisition per call: the call holds its slots. A call object counted again while it
            // still holds slots gets a handle of its own, so each acquisition is released exactly once.
            release = call.TryHoldLimits(held, heldMore) ? call : new SeparateRelease(held, heldMore);
        }

        return default;
    }

    /// <summary>Gives back the concurrency slots a call holds (what disposing the release handle does).</summary>
    internal static void Release(object held, object[]? more)
    {
        ((Counter)held).GiveBackSlot();
        if (more is not null)
        {
            foreach (var c in more)
            {
                ((Counter)c).GiveBackSlot();
            }
        }
    }

    private sealed class SeparateRelease(Counter held, Counter[]? more) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                Release(held, more);
            }
        }
    }

    private Counter CounterFor(LimitRule limit, CallContext call)
    {
        var key = limit.Per switch
        {
            LimitPer.Session => call.SessionId,
            LimitPer.Global => "",
            _ => call.Agent.Name,
        };

        // The limit's table, cached on the (immutable, per policy version) rule for this set of counters.
        var cached = limit.CounterTable;
        ConcurrentDictionary<string, Counter> table;
        if (cached is not null && ReferenceEquals(cached.Owner, this))
        {
            table = cached.Table;
        }
        else
        {
            table = _counters.GetOrAdd(limit.Id, static _ => new ConcurrentDictionary<string, Counter>(StringComparer.Ordinal));
            limit.CounterTable = new CounterTableRef(this, table);
        }

        // One agent calling again and again is the common case (and the one limits exist for): its counter is
        // remembered on the table reference, so the call compares a short string instead of hashing it.
        if (cached is not null && cached.Last is { Removed: false } last && string.Equals(last.Key, key, StringComparison.Ordinal))
        {
            return last;
        }

        var counter = table.TryGetValue(key, out var found)
            ? found
            : table.GetOrAdd(key, static (k, l) => new Counter(l, k), limit);
        if (limit.CounterTable is { } current && ReferenceEquals(current.Owner, this))
        {
            current.Last = counter;
        }

        return counter;
    }

    /// <summary>
    /// Forgets the counts of one limit for an agent (its per-agent count and the counts of its sessions,
    /// <c>agent/...</c>). An operator's resume of a breaker's pause calls this: otherwise the window that
    /// tripped the breaker is still full and the first call after the resume pauses the agent again.
    /// </summary>
    /// <returns>How many counters were forgotten.</returns>
    public int Reset(string limitId, string agent)
    {
        if (!_counters.TryGetValue(limitId, out var table))
        {
            return 0;
        }

        var n = 0;
        foreach (var key in table.Keys)
        {
            if ((key == agent || key.StartsWith(agent + "/", StringComparison.Ordinal)) && table.TryRemove(key, out var removed))
            {
                removed.Removed = true; // a look-up cache holding it must not count on it any more
                n++;
            }
        }

        return n;
    }

    /// <summary>The current level of a limit for a key, for status: (used, capacity).</summary>
    public (double Used, int Capacity)? Level(LimitRule limit, string key) =>
        _counters.TryGetValue(limit.Id, out var table) && table.TryGetValue(key, out var c) ? c.Level(limit, time.GetTimestamp(), time) : null;

    /// <summary>Every counter, for status.</summary>
    public IEnumerable<(string Limit, string Key)> Keys => _counters.SelectMany(t => t.Value.Keys.Select(k => (t.Key, k)));

    /// <summary>A limit's counters in one <see cref="LimitCounters"/>, cached on the rule (immutable, so no torn reads).</summary>
    internal sealed class CounterTableRef(LimitCounters owner, ConcurrentDictionary<string, Counter> table)
    {
        public LimitCounters Owner { get; } = owner;

        public ConcurrentDictionary<string, Counter> Table { get; } = table;

        /// <summary>The counter this limit counted last (racy by design: any published counter of the table is valid).</summary>
        public Counter? Last { get; set; }
    }

    internal sealed class Counter
    {
        private readonly Lock _gate = new();
        private readonly SlidingWindow _window;
        private double _tokens;
        private long _refilledAt;
        private int _inFlight;

        /// <summary>The agent, session or "" this counter counts for.</summary>
        public string Key { get; }

        /// <summary>Set when <see cref="Reset"/> dropped it from its table.</summary>
        public volatile bool Removed;

        public Counter(LimitRule limit, string key)
        {
            Key = key;
            _tokens = limit.Burst > 0 ? limit.Burst : limit.Count;
            _refilledAt = -1;
            _window = new SlidingWindow(limit.Kind is LimitKind.Budget or LimitKind.Breaker ? limit.Count : 0);
        }

        public bool TryTake(LimitRule limit, LimitTiming timing, long now)
        {
            if (limit.Kind == LimitKind.Concurrency)
            {
                // A slot is one integer: taken and given back without the lock.
                var inFlight = Volatile.Read(ref _inFlight);
                while (true)
                {
                    if (inFlight >= limit.Count)
                    {
                        return false;
                    }

                    var seen = Interlocked.CompareExchange(ref _inFlight, inFlight + 1, inFlight);
                    if (seen == inFlight)
                    {
                        return true;
                    }

                    inFlight = seen;
                }
            }

            lock (_gate)
            {
                switch (limit.Kind)
                {
                    case LimitKind.Rate:
                        Refill(limit, timing, now);
                        if (_tokens < 1)
                        {
                            return false;
                        }

                        _tokens -= 1;
                        return true;
                    default:
                        // Budget and breaker: a sliding log of the last Count calls inside the window.
                        return _window.TryAdd(limit, timing, now);
                }
            }
        }

        public void GiveBackSlot()
        {
            // Never below zero: a release racing a reload that replaced the counter must not open extra slots.
            var inFlight = Volatile.Read(ref _inFlight);
            while (inFlight > 0)
            {
                var seen = Interlocked.CompareExchange(ref _inFlight, inFlight - 1, inFlight);
                if (seen == inFlight)
                {
                    return;
                }

                inFlight = seen;
            }
        }

        public void GiveBack(LimitRule limit)
        {
            if (limit.Kind == LimitKind.Concurrency)
            {
                GiveBackSlot();
                return;
            }

            lock (_gate)
            {
                switch (limit.Kind)
                {
                    case LimitKind.Rate:
                        _tokens = Math.Min(_tokens + 1, limit.Burst > 0 ? limit.Burst : limit.Count);
                        break;
                    default:
                        _window.RemoveLast();
                        break;
                }
            }
        }

        public (double Used, int Capacity) Level(LimitRule limit, long now, TimeProvider time)
        {
            var timing = limit.TimingFor(time.TimestampFrequency);
            lock (_gate)
            {
                switch (limit.Kind)
                {
                    case LimitKind.Rate:
                        Refill(limit, timing, now);
                        return (timing.Capacity - _tokens, timing.Capacity);
                    case LimitKind.Concurrency:
                        return (Volatile.Read(ref _inFlight), limit.Count);
                    default:
                        return (_window.CountIn(limit, timing, now), limit.Count);
                }
            }
        }

        private void Refill(LimitRule limit, LimitTiming timing, long now)
        {
            if (_refilledAt >= 0)
            {
                _tokens = Math.Min(timing.Capacity, _tokens + ((double)(now - _refilledAt) * limit.Count / timing.WindowTicksExact));
            }

            _refilledAt = now;
        }
    }

    /// <summary>
    /// Calls inside a sliding window. Small limits (up to 256, breakers and most budgets) keep the exact time of
    /// each call in a ring; larger ones count in 64 buckets with a running total, which may count up to one bucket
    /// (1/64 of the window) of older calls: never more permissive than the limit, and memory stays bounded.
    /// </summary>
    private sealed class SlidingWindow
    {
        private const int ExactUpTo = 256;
        private const int Buckets = LimitTiming.Buckets;
        private readonly long[]? _ring;
        private readonly int[]? _counts;
        private long _lastBucket = -1;
        private int _total;
        private int _head;
        private int _size;
        private int _lastSlot = -1;

        public SlidingWindow(int count)
        {
            if (count <= 0)
            {
                return;
            }

            if (count <= ExactUpTo)
            {
                _ring = new long[count];
            }
            else
            {
                _counts = new int[Buckets];
            }
        }

        public bool TryAdd(LimitRule limit, LimitTiming timing, long now)
        {
            if (_ring is { } ring)
            {
                while (_size > 0 && now - ring[_head] >= timing.WindowTicks)
                {
                    _head = (_head + 1) % ring.Length;
                    _size--;
                }

                if (_size >= limit.Count)
                {
                    return false;
                }

                ring[(_head + _size) % ring.Length] = now;
                _size++;
                return true;
            }

            Advance(now / timing.BucketTicks);
            if (_total >= limit.Count)
            {
                return false;
            }

            _lastSlot = (int)(_lastBucket & (Buckets - 1));
            _counts![_lastSlot]++;
            _total++;
            return true;
        }

        // Moves the window to the current bucket, forgetting the buckets that fell out of it. Amortized O(1):
        // each bucket is expired once.
        private void Advance(long bucket)
        {
            if (_lastBucket < 0)
            {
                _lastBucket = bucket;
                return;
            }

            var steps = Math.Min(bucket - _lastBucket, Buckets);
            for (var i = 1; i <= steps; i++)
            {
                var slot = (int)((_lastBucket + i) & (Buckets - 1));
                _total -= _counts![slot];
                _counts[slot] = 0;
            }

            if (bucket > _lastBucket)
            {
                _lastBucket = bucket;
            }
        }

        public void RemoveLast()
        {
            if (_ring is not null)
            {
                if (_size > 0)
                {
                    _size--;
                }
            }
            else if (_lastSlot >= 0 && _counts![_lastSlot] > 0)
            {
                _counts[_lastSlot]--;
                _total--;
            }
        }

        public int CountIn(LimitRule limit, LimitTiming timing, long now)
        {
            if (_ring is { } ring)
            {
                var n = 0;
                for (var i = 0; i < _size; i++)
                {
                    if (now - ring[(_head + i) % ring.Length] < timing.WindowTicks)
                    {
                        n++;
                    }
                }

                return n;
            }

            if (_counts is null)
            {
                return 0;
            }

            Advance(now / timing.BucketTicks);
            return _total;
        }
    }
}
