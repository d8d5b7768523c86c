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
    private readonly ConcurrentDictionary<(string Limit, string Key), Counter> _counters = new();

    /// <summary>Checks every limit that covers the call and, when none refuses it, counts the call against them.</summary>
    /// <param name="limits">The limits that apply to the call (already matched).</param>
    /// <param name="call">The call.</param>
    /// <param name="release">Set when a concurrency limit counted the call: dispose it when the call ends.</param>
    public LimitVerdict Acquire(IReadOnlyList<LimitRule> limits, CallContext call, out IDisposable? release)
    {
        release = null;
        if (limits.Count == 0)
        {
            return default;
        }

        var now = time.GetTimestamp();
        var taken = new List<(Counter Counter, LimitRule Limit)>(limits.Count);
        foreach (var limit in limits)
        {
            var key = limit.Per switch
            {
                LimitPer.Session => call.SessionId,
                LimitPer.Global => "",
                _ => call.Agent.Name,
            };
            var counter = _counters.GetOrAdd((limit.Id, key), static (_, l) => new Counter(l), limit);
            if (!counter.TryTake(limit, now, time))
            {
                // All or nothing: give back what earlier limits took for this call.
                foreach (var (c, l) in taken)
                {
                    c.GiveBack(l);
                }

                return new LimitVerdict(limit, $"limit {limit.Id} exceeded ({limit.Describe()} per {limit.Per.ToString().ToLowerInvariant()})");
            }

            taken.Add((counter, limit));
        }

        var concurrency = taken.Where(t => t.Limit.Kind == LimitKind.Concurrency).ToList();
        if (concurrency.Count > 0)
        {
            release = new Release(concurrency);
        }

        return default;
    }

    /// <summary>
    /// Forgets the counts of one limit for an agent (its per-agent count and the counts of its sessions,
    /// <c>agent/...</c>). An operator's resume of a breaker's pause calls this: otherwise the window that
    /// tripped the breaker is still full and the first call after the resume pauses the agent again.
    /// </summary>
    /// <returns>How many counters were forgotten.</returns>
    public int Reset(string limitId, string agent)
    {
        var n = 0;
        foreach (var key in _counters.Keys)
        {
            if (key.Limit == limitId && (key.Key == agent || key.Key.StartsWith(agent + "/", StringComparison.Ordinal)) && _counters.TryRemove(key, out _))
            {
                n++;
            }
        }

        return n;
    }

    /// <summary>The current level of a limit for a key, for status: (used, capacity).</summary>
    public (double Used, int Capacity)? Level(LimitRule limit, string key) =>
        _counters.TryGetValue((limit.Id, key), out var c) ? c.Level(limit, time.GetTimestamp(), time) : null;

    /// <summary>Every counter, for status.</summary>
    public IEnumerable<(string Limit, string Key)> Keys => _counters.Keys;

    private sealed class Release(List<(Counter Counter, LimitRule Limit)> taken) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                foreach (var (c, l) in taken)
                {
                    c.GiveBack(l);
                }
            }
        }
    }

    private sealed class Counter
    {
        private readonly Lock _gate = new();
        private readonly Queue<long> _events = new();
        private double _tokens;
        private long _refilledAt;
        private int _inFlight;

        public Counter(LimitRule limit)
        {
            _tokens = limit.Burst > 0 ? limit.Burst : limit.Count;
            _refilledAt = -1;
        }

        public bool TryTake(LimitRule limit, long now, TimeProvider time)
        {
            lock (_gate)
            {
                switch (limit.Kind)
                {
                    case LimitKind.Rate:
                        Refill(limit, now, time);
                        if (_tokens < 1)
                        {
                            return false;
                        }

                        _tokens -= 1;
                        return true;
                    case LimitKind.Concurrency:
                        if (_inFlight >= limit.Count)
                        {
                            return false;
                        }

                        _inFlight++;
                        return true;
                    default:
                        // Budget and breaker: a sliding log of the last Count calls inside the window.
                        while (_events.Count > 0 && time.GetElapsedTime(_events.Peek(), now) >= limit.Window)
                        {
                            _events.Dequeue();
                        }

                        if (_events.Count >= limit.Count)
                        {
                            return false;
                        }

                        _events.Enqueue(now);
                        return true;
                }
            }
        }

        public void GiveBack(LimitRule limit)
        {
            lock (_gate)
            {
                switch (limit.Kind)
                {
                    case LimitKind.Rate:
                        _tokens = Math.Min(_tokens + 1, limit.Burst > 0 ? limit.Burst : limit.Count);
                        break;
                    case LimitKind.Concurrency:
                        _inFlight = Math.Max(0, _inFlight - 1);
                        break;
                    default:
                        if (_events.Count > 0)
                        {
                            // The newest entry is this call's: rebuild the queue without it.
                            var kept = _events.ToArray()[..^1];
                            _events.Clear();
                            foreach (var e in kept)
                            {
                                _events.Enqueue(e);
                            }
                        }

                        break;
                }
            }
        }

        public (double Used, int Capacity) Level(LimitRule limit, long now, TimeProvider time)
        {
            lock (_gate)
            {
                switch (limit.Kind)
                {
                    case LimitKind.Rate:
                        Refill(limit, now, time);
                        var capacity = limit.Burst > 0 ? limit.Burst : limit.Count;
                        return (capacity - _tokens, capacity);
                    case LimitKind.Concurrency:
                        return (_inFlight, limit.Count);
                    default:
                        var inWindow = _events.Count(e => time.GetElapsedTime(e, now) < limit.Window);
                        return (inWindow, limit.Count);
                }
            }
        }

        private void Refill(LimitRule limit, long now, TimeProvider time)
        {
            if (_refilledAt >= 0)
            {
                var elapsed = time.GetElapsedTime(_refilledAt, now);
                var capacity = limit.Burst > 0 ? limit.Burst : limit.Count;
                _tokens = Math.Min(capacity, _tokens + (elapsed.TotalSeconds * limit.Count / limit.Window.TotalSeconds));
            }

            _refilledAt = now;
        }
    }
}
