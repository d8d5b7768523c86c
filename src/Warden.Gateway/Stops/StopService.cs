using Microsoft.Extensions.Logging;
using Warden.Core.Storage;
using Warden.Core.Stops;

namespace Warden.Gateway.Stops;

/// <summary>The answer to a stop: what took effect and whether it is recorded yet.</summary>
/// <param name="Stop">The stop.</param>
/// <param name="Recorded">True when the stop is durable in the store; false when the store is down (it is in effect anyway).</param>
/// <param name="Cancelled">Calls in flight that were cancelled.</param>
/// <param name="Message">What happened, for a person.</param>
public sealed record StopAcknowledgement(StopRecord Stop, bool Recorded, int Cancelled, string Message)
{
    /// <summary><see cref="StopService.Forwarded"/> when the barrier closed: for a stop of everything, the count must
    /// not move until a resume (the bench checks this on every repetition).</summary>
    public long ForwardedAtBarrier { get; init; }

    /// <summary>From the start of the stop to the barrier's end (gate closed, nothing more can be forwarded), before the store write and the cancellations.</summary>
    public TimeSpan InEffectAfter { get; init; }

    /// <summary>True when the record was written on the stopping thread at once; false when it waited for another writer.</summary>
    public bool RecordedAtOnce { get; init; }
}

/// <summary>
/// Issues and lifts stops. A stop is acknowledged only after (1) the in-process gate for its scope is closed,
/// (2) every call that had already passed the stop check is registered in flight, and cancelled if the stop
/// covers it, and (3) the stop is durable in the store. When the store is down, (3) is replaced by "in effect,
/// not yet recorded" and the record is written when the store returns: a stop never waits for what it protects.
/// </summary>
public sealed partial class StopService
{
    private static readonly TimeSpan StoreBound = TimeSpan.FromSeconds(2);

    private readonly StopTable _table;
    private readonly AdmissionGate _gate;
    private readonly CallTracker _tracker;
    private readonly IWardenStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _pendingGate = new();
    private readonly List<StopRecord> _unrecorded = [];
    private Task? _retry;
    private long _localAdds;

    internal StopService(StopTable table, AdmissionGate gate, CallTracker tracker, IWardenStore store, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _table = table;
        _gate = gate;
        _tracker = tracker;
        _store = store;
        _time = time;
        _logger = loggerFactory.CreateLogger("Warden.Stops");
    }

    /// <summary>Fires once a stop issued here is in effect (pending approvals in its scope are voided on it).</summary>
    public event Action<StopRecord>? Issued;

    /// <summary>The stops in force in this process.</summary>
    public IReadOnlyList<StopRecord> Active => _table.Stops;

    /// <summary>Stops not yet written to the store.</summary>
    public int Unrecorded
    {
        get
        {
            lock (_pendingGate)
            {
                return _unrecorded.Count;
            }
        }
    }

    /// <summary>Calls forwarded (registered in flight) since start: a barrier check for tests and the bench, which read
    /// it right after an acknowledgement and again later; with every agent stopped it must not move.</summary>
    public long Forwarded => _tracker.Registered;

    private bool IsUnrecorded(StopRecord stop)
    {
        lock (_pendingGate)
        {
            return _unrecorded.Contains(stop);
        }
    }

    /// <summary>Stops calls in a scope.</summary>
    public async Task<StopAcknowledgement> StopAsync(StopScope scope, string target, string by, string reason, bool pause = false, CancellationToken cancellationToken = default)
    {
        target = scope == StopScope.All ? "" : target;
        if (pause && _table.Stops.FirstOrDefault(s => s.IsPause && s.Scope == scope && s.Target == target && s.By == by) is { } existing)
        {
            // A breaker trips once: calls that raced past the stop check while its pause was landing are refused
            // by the breaker again, and must not pile up more pauses for the same agent.
            return new StopAcknowledgement(existing, !IsUnrecorded(existing), 0, $"{existing.ScopeText} already paused");
        }

        var stop = new StopRecord("stp_" + Guid.NewGuid().ToString("N")[..16], scope, target, by, reason, _time.GetUtcNow(), pause);

        // (1) Close the gate: every stop check from now on sees the stop.
        var started = _time.GetTimestamp();
        Interlocked.Increment(ref _localAdds);
        if (!pause)
        {
            _table.Add(stop);
        }
        else if (_table.AddPauseOnce(stop) is var inForce && !ReferenceEquals(inForce, stop))
        {
            // Two trips raced past the check above: the first one's pause stands.
            return new StopAcknowledgement(inForce, !IsUnrecorded(inForce), 0, $"{inForce.ScopeText} already paused");
        }

        // (2) The barrier: calls that passed the check before (1) are now registered in flight, so (2b) reaches them.
        // A pause (a breaker) refuses new calls only: the calls in flight were admitted within the limit, so they
        // finish ("exactly N deletions reach the mailbox"). An operator's stop cancels them.
        await _gate.DrainAsync(CancellationToken.None).ConfigureAwait(false);
        var covered = pause ? [] : _tracker.Covered(stop);
        var forwardedAtBarrier = _tracker.Registered;
        var inEffectAfter = _time.GetElapsedTime(started);

        // (3) Durable. A stop is in effect before this, and stays in effect if the store is down. When the write
        // can happen at once, it comes before the cancellations: each cancelled call's clean-up (the upstream's
        // notifications/cancelled, the agent's error, the outcome record) runs on another thread, and on a busy
        // machine those threads would take the cores while the record commits. Otherwise they are cancelled now.
        var atOnce = TryRecordNow(stop);
        CallTracker.Cancel(covered, stop);
        Issued?.Invoke(stop);
        var recorded = atOnce || await TryRecordAsync(stop, cancellationToken).ConfigureAwait(false);
        var cancelled = covered.Count;
        LogStopped(_logger, stop.ScopeText, by, reason, cancelled, recorded);
        return new StopAcknowledgement(stop, recorded, cancelled, recorded
            ? $"{stop.ScopeText} stopped; {cancelled} call(s) in flight cancelled"
            : $"{stop.ScopeText} stopped: in effect, not yet recorded (the store is unavailable; it will be recorded when the store returns); {cancelled} call(s) in flight cancelled")
        {
            ForwardedAtBarrier = forwardedAtBarrier,
            InEffectAfter = inEffectAfter,
            RecordedAtOnce = atOnce,
        };
    }

    /// <summary>Lifts the stops matching a scope (or one stop by id); returns those lifted.</summary>
    public async Task<IReadOnlyList<StopRecord>> ResumeAsync(string? id, StopScope? scope, string? target, string by, string reason, CancellationToken cancellationToken = default)
    {
        var matching = _table.Stops.Where(s => id is not null ? s.Id == id : s.Scope == scope && (scope == StopScope.All || s.Target == target)).ToList();
        var lifted = new List<StopRecord>();
        foreach (var stop in matching)
        {
            // The store first: a resume that cannot be recorded does not take effect, so the stop stays.
            lock (_pendingGate)
            {
                if (_unrecorded.Remove(stop))
                {
                    _table.Remove(stop.Id);
                    lifted.Add(stop);
                    continue;
                }
            }

            if (await _store.LiftStopAsync(stop.Id, by, reason, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false))
            {
                _table.Remove(stop.Id);
                lifted.Add(stop);
                LogResumed(_logger, stop.ScopeText, by, reason);
            }
            else
            {
                // Another process lifted it already.
                _table.Remove(stop.Id);
            }
        }

        return lifted;
    }

    /// <summary>Reads the stops in force from the store (at start, and when another process changed them).</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var adds = Volatile.Read(ref _localAdds);
        var stored = await _store.ListStopsAsync(cancellationToken).ConfigureAwait(false);
        List<StopRecord> local;
        lock (_pendingGate)
        {
            local = [.. _unrecorded];
        }

        var before = _table.Stops.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        if (Volatile.Read(ref _localAdds) != adds)
        {
            // A stop was issued here while the store was read: the snapshot may predate its record, and replacing
            // the table with it would lift that stop (calls forwarded after its acknowledgement). Only add; the
            // stop's own change notification brings the next, complete refresh, which also removes lifted stops.
            foreach (var s in stored.Concat(local))
            {
                _table.Add(s);
            }
        }
        else
        {
            _table.Replace(stored.Concat(local));
        }

        foreach (var stop in stored.Where(s => !before.Contains(s.Id) && !s.IsPause))
        {
            // A stop issued by another process: cancel what this process has in flight in its scope.
            await _gate.DrainAsync(CancellationToken.None).ConfigureAwait(false);
            _tracker.Cancel(stop);
        }
    }

    // On this thread when the store can take the write at once: under load every thread switch (the store's
    // hand-off to the thread pool, the continuation after the write) waits behind the agents being stopped.
    private bool TryRecordNow(StopRecord stop)
    {
        try
        {
            return _store.TryAddStopNow(stop);
        }
        catch (StoreUnavailableException)
        {
            return false; // the bounded write below tries again, and reports
        }
    }

    // Otherwise (another writer holds the lock, fsync durability, the store down) the bounded asynchronous write.
    private async Task<bool> TryRecordAsync(StopRecord stop, CancellationToken cancellationToken)
    {
        try
        {
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bound.CancelAfter(StoreBound);

            // WaitAsync as well as the token: SQLite waits for a locked file inside native code (busy_timeout),
            // where no token is seen, and the acknowledgement must not wait for that. The write goes on in the
            // background; the retry writes the same id again, which the store ignores.
            await _store.AddStopAsync(stop, bound.Token).AsTask().WaitAsync(StoreBound, _time, CancellationToken.None).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is StoreUnavailableException or OperationCanceledException or TimeoutException)
        {
            lock (_pendingGate)
            {
                _unrecorded.Add(stop);
                _retry ??= Task.Run(RetryAsync, CancellationToken.None);
            }

            LogUnrecorded(_logger, stop.ScopeText, ex.Message);
            return false;
        }
    }

    private async Task RetryAsync()
    {
        while (true)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(500), _time).ConfigureAwait(false);
            StopRecord[] pending;
            lock (_pendingGate)
            {
                if (_unrecorded.Count == 0)
                {
                    _retry = null;
                    return;
                }

                pending = [.. _unrecorded];
            }

            foreach (var stop in pending)
            {
                try
                {
                    using var bound = new CancellationTokenSource(StoreBound);
                    await _store.AddStopAsync(stop, bound.Token).AsTask().WaitAsync(StoreBound, _time, CancellationToken.None).ConfigureAwait(false);
                    lock (_pendingGate)
                    {
                        _unrecorded.Remove(stop);
                    }

                    LogRecordedLate(_logger, stop.ScopeText);
                }
                catch (Exception ex) when (ex is StoreUnavailableException or OperationCanceledException or TimeoutException)
                {
                    break;
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopped {Scope} by {By}: {Reason} ({Cancelled} in flight cancelled; recorded: {Recorded})")]
    private static partial void LogStopped(ILogger logger, string scope, string by, string reason, int cancelled, bool recorded);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Resumed {Scope} by {By}: {Reason}")]
    private static partial void LogResumed(ILogger logger, string scope, string by, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Stop of {Scope} is in effect but not recorded: {Error}; retrying")]
    private static partial void LogUnrecorded(ILogger logger, string scope, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stop of {Scope} recorded after the store returned")]
    private static partial void LogRecordedLate(ILogger logger, string scope);
}
