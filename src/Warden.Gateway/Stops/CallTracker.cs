using System.Collections.Concurrent;
using Warden.Core.Pipeline;
using Warden.Core.Stops;

namespace Warden.Gateway.Stops;

/// <summary>Calls forwarded and not yet answered, so a stop can cancel the ones in its scope.</summary>
internal sealed class CallTracker
{
    private readonly ConcurrentDictionary<long, Entry> _calls = new();
    private long _next;

    /// <summary>One call in flight.</summary>
    public sealed class Entry : IDisposable
    {
        private readonly CallTracker _owner;

        internal Entry(CallTracker owner, long id, CallContext call)
        {
            _owner = owner;
            Id = id;
            Call = call;
        }

        public long Id { get; }

        public CallContext Call { get; }

        public CancellationTokenSource Cancellation { get; } = new();

        public string? CancelledBecause { get; private set; }

        internal void Cancel(string message)
        {
            CancelledBecause = message;
            try
            {
                // The token is cancelled now; its callbacks (the upstream's notifications/cancelled, the agent's
                // error, the outcome record) run on the thread pool, not on the stop's path to its acknowledgement.
                _ = Cancellation.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // Finished meanwhile.
            }
        }

        public void Dispose()
        {
            _owner._calls.TryRemove(Id, out _);
            Cancellation.Dispose();
        }
    }

    /// <summary>Number of calls in flight.</summary>
    public int Count => _calls.Count;

    /// <summary>The calls in flight now, oldest first (for the API and the dashboard).</summary>
    public IReadOnlyList<Entry> InFlight() => [.. _calls.Values.OrderBy(e => e.Id)];

    /// <summary>Calls registered since start (each one forwarded, or about to be).</summary>
    public long Registered => Volatile.Read(ref _next);

    /// <summary>Registers a call about to be forwarded.</summary>
    public Entry Register(CallContext call)
    {
        var entry = new Entry(this, Interlocked.Increment(ref _next), call);
        _calls[entry.Id] = entry;
        return entry;
    }

    /// <summary>Cancels every call in flight that a stop covers; returns how many.</summary>
    public int Cancel(StopRecord stop)
    {
        var covered = Covered(stop);
        Cancel(covered, stop);
        return covered.Count;
    }

    /// <summary>The calls in flight that a stop covers (to cancel them a moment later with <see cref="Cancel(List{Entry}, StopRecord)"/>).</summary>
    public List<Entry> Covered(StopRecord stop)
    {
        var covered = new List<Entry>();
        foreach (var entry in _calls.Values)
        {
            if (stop.Covers(entry.Call))
            {
                covered.Add(entry);
            }
        }

        return covered;
    }

    /// <summary>Cancels <paramref name="covered"/>.</summary>
    public static void Cancel(List<Entry> covered, StopRecord stop)
    {
        foreach (var entry in covered)
        {
            // The call had left already: Warden abandons it and asks the upstream to cancel, but the upstream
            // may have finished it first (MCP sends no answer to a cancelled request), so say so.
            entry.Cancel(stop.Message + " (this call was in flight: Warden cancelled it, but the upstream may have completed it)");
        }
    }
}
