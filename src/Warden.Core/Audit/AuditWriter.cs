using System.Collections.Concurrent;
using Warden.Core.Storage;

namespace Warden.Core.Audit;

/// <summary>
/// Group commit in front of an <see cref="IAuditStore"/>: callers queue events without waiting, one commit at a
/// time drains whatever is queued, appends it in one transaction, and completes each event's
/// <see cref="AuditReceipt"/> when it is durable. Under load many events share one commit (and one fsync).
/// </summary>
/// <remarks>
/// <para>Three ways in. <see cref="Enqueue(AuditEvent)"/> wakes the writer thread at once. <see cref="Defer(AuditEvent)"/>
/// (records nobody waits for: decisions, outcomes) does not: the event rides with the next commit, and the writer
/// thread commits it within <see cref="DeferFor"/> when no commit comes sooner. <see cref="Commit"/> (a call's intent,
/// which the call waits for) commits on the caller's thread when no other commit is running and the store can take
/// its write lock without waiting; otherwise the writer thread does it. A sequential caller thus pays for one
/// transaction holding its decision, its intent and the previous call's outcome, and for no thread switch.</para>
/// <para>The writer runs on a thread of its own, because a store write may block (a held lock, a stalled disk) and
/// must not take a thread-pool thread with it: a caller commits only through
/// <see cref="IAuditStore.TryAppendNow"/>, which refuses rather than waits. A failed append fails every event of its
/// batch with the store's exception and the writer goes on with the next batch, so the log resumes when the store
/// does; while the last append failed, callers leave every commit to the writer thread. A full queue refuses new
/// events at once (<see cref="StoreUnavailableException"/>) instead of blocking.</para>
/// </remarks>
public sealed class AuditWriter : IAsyncDisposable
{
    /// <summary>The longest a deferred event waits for a commit to ride with.</summary>
    public static readonly TimeSpan DeferFor = TimeSpan.FromMilliseconds(10);

    private readonly IAuditStore _store;
    private readonly ConcurrentQueue<AuditReceipt> _queue = new();
    private readonly int _capacity;
    private readonly int _maxBatch;
    private readonly Thread _thread;
    private readonly Lock _commit = new();
    private readonly Wakeup _signal = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<AuditReceipt> _batch;
    private readonly List<AuditEvent> _events;
    private bool _initialized;
    private int _count;
    private int _awaited;
    private int _lastBatchAwaited;
    private int _parked;
    private int _urgent;
    private volatile bool _stopping;
    private volatile bool _carrying;
    private long _written;
    private long _batches;
    private long _inline;
    private long _failures;

    /// <summary>Creates and starts the writer.</summary>
    /// <param name="store">The store, initialized or not (the writer initializes it, retrying until it works).</param>
    /// <param name="capacity">Events that may wait; beyond that, enqueueing fails at once.</param>
    /// <param name="maxBatch">Most events per transaction.</param>
    public AuditWriter(IAuditStore store, int capacity = 65_536, int maxBatch = 2_048)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatch, 1);
        _store = store;
        _capacity = capacity;
        _maxBatch = maxBatch;
        _batch = new List<AuditReceipt>(Math.Min(maxBatch, 256));
        _events = new List<AuditEvent>(Math.Min(maxBatch, 256));
        _thread = new Thread(Run) { IsBackground = true, Name = "warden-audit-writer" };
        _thread.Start();
    }

    /// <summary>Events written so far.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Transactions committed so far.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Transactions committed on a caller's thread (by <see cref="Commit"/>) so far.</summary>
    public long InlineBatches => Interlocked.Read(ref _inline);

    /// <summary>Batches that failed.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>True while the last append failed (cleared by the next success).</summary>
    public bool Failing { get; private set; }

    /// <summary>The last append failure, while <see cref="Failing"/>.</summary>
    public Exception? LastError { get; private set; }

    /// <summary>Raised (inside the commit, on the committing thread) after each successful append with the events as written.</summary>
    public event Action<IReadOnlyList<AuditEvent>>? Appended;

    /// <summary>Queues an event and wakes the writer. Never blocks; the receipt completes when the event is durable, or fails.</summary>
    public AuditReceipt Enqueue(AuditEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return Add(new AuditReceipt(e, null), Wake.Now);
    }

    /// <summary>
    /// Queues an event built later, just before it is written (on the committing thread): the caller's path then
    /// pays for an allocation and a queue write, not for serializing and masking arguments. The factory must only
    /// read immutable state. If it throws, an <c>audit.error</c> event takes its place (the chain has no holes).
    /// </summary>
    public AuditReceipt Enqueue(Func<AuditEvent> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        return Add(new AuditReceipt(null, build), Wake.Now);
    }

    /// <summary>Queues an event nobody waits for: written with the next commit, at the latest after <see cref="DeferFor"/>.</summary>
    public AuditReceipt Defer(AuditEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return Add(new AuditReceipt(e, null), Wake.Later);
    }

    /// <summary>Queues an event built later (see <see cref="Enqueue(Func{AuditEvent})"/>), written as <see cref="Defer(AuditEvent)"/>.</summary>
    public AuditReceipt Defer(Func<AuditEvent> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        return Add(new AuditReceipt(null, build), Wake.Later);
    }

    /// <summary>
    /// Queues an event somebody waits for and commits the queue on the caller's thread when that costs no wait
    /// (no other commit running, the store's lock free, the last append good); otherwise wakes the writer. The
    /// receipt is often complete on return.
    /// </summary>
    public AuditReceipt Commit(AuditEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var receipt = Add(new AuditReceipt(e, null) { Awaited = true }, Wake.None);
        if (receipt.Durable.IsCompleted)
        {
            return receipt; // refused: queue full or writer stopped
        }

        // Alone: no other intent waits now, and the last batch held at most one (callers are not arriving faster
        // than commits). Otherwise the writer thread's group commit serves them all in one transaction, where
        // commits on each caller's thread would split the batch (measured with 32 callers: 5x the commits, twice
        // the latency).
        if (Volatile.Read(ref _awaited) == 1
            && Volatile.Read(ref _lastBatchAwaited) <= 1
            && !Failing && !_stopping && _commit.TryEnter())
        {
            try
            {
                // Only the caller's own receipt is its business: at most one batch, then the writer takes over.
                if (!_stopping)
                {
                    DrainLocked(inline: true);
                }
            }
            finally
            {
                _commit.Exit();
            }

            if (receipt.Durable.IsCompleted)
            {
                return receipt;
            }
        }

        Signal(Wake.Now);
        return receipt;
    }

    private enum Wake
    {
        None,
        Later,
        Now,
    }

    private AuditReceipt Add(AuditReceipt receipt, Wake wake)
    {
        if (_stopping || _done.Task.IsCompleted)
        {
            receipt.Fail(new StoreUnavailableException("The audit writer has stopped."));
            return receipt;
        }

        if (Interlocked.Increment(ref _count) > _capacity)
        {
            Interlocked.Decrement(ref _count);
            receipt.Fail(new StoreUnavailableException("The audit queue is full: the audit store is not keeping up or not writing."));
            return receipt;
        }

        if (receipt.Awaited)
        {
            Interlocked.Increment(ref _awaited);
        }

        _queue.Enqueue(receipt);
        Signal(wake);
        return receipt;
    }

    private void Signal(Wake wake)
    {
        if (wake == Wake.Now)
        {
            if (Interlocked.Exchange(ref _urgent, 1) == 0)
            {
                _signal.Release();
            }
        }
        else if (wake == Wake.Later && Volatile.Read(ref _parked) == 1 && Interlocked.CompareExchange(ref _parked, 0, 1) == 1)
        {
            // The writer sleeps without a deadline: start its clock for this event.
            _signal.Release();
        }
    }

    // Work for the writer thread: queued events, or a batch a caller could not append without waiting.
    private bool HasWork => _carrying || !_queue.IsEmpty;

    private void Run()
    {
        try
        {
            while (true)
            {
                if (!HasWork)
                {
                    if (_stopping)
                    {
                        break;
                    }

                    // Park. Cleared first, so a Commit's call for help from now on releases the semaphore.
                    Volatile.Write(ref _urgent, 0);
                    Volatile.Write(ref _parked, 1);
                    if (!HasWork && !_stopping)
                    {
                        _signal.Wait(Timeout.InfiniteTimeSpan);
                    }

                    Volatile.Write(ref _parked, 0);
                    continue;
                }

                if (Volatile.Read(ref _urgent) == 0 && !_stopping)
                {
                    // Deferred events only: give a commit on a caller's thread the chance to take them along.
                    _signal.Wait(DeferFor);
                }

                Volatile.Write(ref _urgent, 0);
                lock (_commit)
                {
                    while (HasWork)
                    {
                        DrainLocked(inline: false);
                    }
                }
            }
        }
        finally
        {
            foreach (var r in _batch)
            {
                r.Fail(new StoreUnavailableException("The audit writer has stopped."));
            }

            while (_queue.TryDequeue(out var r))
            {
                r.Fail(new StoreUnavailableException("The audit writer has stopped."));
            }

            _done.TrySetResult();
        }
    }

    // One batch, under _commit. Inline (a caller's thread): never waits for the store; if it would have to, the
    // batch is left to the writer thread, in order, ahead of anything queued later.
    private void DrainLocked(bool inline)
    {
        var batch = _batch;
        var events = _events;
        if (batch.Count == 0)
        {
            var awaited = 0;
            while (batch.Count < _maxBatch && _queue.TryDequeue(out var r))
            {
                Interlocked.Decrement(ref _count);
                if (r.Awaited)
                {
                    Interlocked.Decrement(ref _awaited);
                    awaited++;
                }

                batch.Add(r);
                events.Add(r.Materialize());
            }

            Volatile.Write(ref _lastBatchAwaited, awaited);
        }

        if (batch.Count == 0)
        {
            return;
        }

        try
        {
            IReadOnlyList<AuditEvent>? written;
            if (inline)
            {
                if (!_initialized || (written = _store.TryAppendNow(events)) is null)
                {
                    // Kept in _batch: the writer thread appends it first.
                    _carrying = true;
                    Signal(Wake.Now);
                    return;
                }

                Interlocked.Increment(ref _inline);
            }
            else
            {
                if (!_initialized)
                {
                    _store.InitializeAsync().AsTask().GetAwaiter().GetResult();
                    _initialized = true;
                }

                written = _store.AppendAsync(events).AsTask().GetAwaiter().GetResult();
            }

            Interlocked.Add(ref _written, written.Count);
            Interlocked.Increment(ref _batches);
            Failing = false;
            LastError = null;
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Succeed(written[i]);
            }

            try
            {
                Appended?.Invoke(written);
            }
            catch (Exception)
            {
                // an observer's fault is not the log's
            }
        }
        catch (Exception ex)
        {
            Interlocked.Increment(ref _failures);
            var fault = ex as StoreUnavailableException ?? new StoreUnavailableException("The audit store could not write: " + ex.Message, ex);
            Failing = true;
            LastError = fault;
            foreach (var r in batch)
            {
                r.Fail(fault);
            }
        }

        batch.Clear();
        events.Clear();
        _carrying = false;
    }

    /// <summary>Stops taking events, writes what is queued, and waits for the writer (up to 10 s).</summary>
    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        _signal.Release();
        await _done.Task.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>
    /// An auto-reset wake-up for the writer thread that blocks at once. SemaphoreSlim spins (yielding the core) before
    /// it blocks, which the profile of a gateway under sequential calls showed as 3% of its CPU: the writer parks and
    /// wakes around every few calls, and a spin never pays off for a thread that sleeps for milliseconds. Wake-ups
    /// are not counted: the writer re-checks its queue after each one.
    /// </summary>
    private sealed class Wakeup
    {
        private readonly object _gate = new();
        private bool _set;

        public void Release()
        {
            lock (_gate)
            {
                _set = true;
                Monitor.Pulse(_gate);
            }
        }

        public void Wait(TimeSpan timeout)
        {
            lock (_gate)
            {
                if (!_set)
                {
                    Monitor.Wait(_gate, timeout);
                }

                _set = false;
            }
        }
    }
}

/// <summary>An event on its way to the log: completes with the event as written once it is durable.</summary>
public sealed class AuditReceipt
{
    private readonly TaskCompletionSource<AuditEvent> _durable = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Func<AuditEvent>? _build;
    private AuditEvent? _event;

    internal AuditReceipt(AuditEvent? e, Func<AuditEvent>? build)
    {
        _event = e;
        _build = build;
    }

    /// <summary>True for an event somebody waits for (queued by <see cref="AuditWriter.Commit"/>).</summary>
    internal bool Awaited { get; init; }

    /// <summary>Completes with the written event (numbered and hashed) when durable; faults with <see cref="StoreUnavailableException"/>.</summary>
    public Task<AuditEvent> Durable => _durable.Task;

    internal AuditEvent Materialize()
    {
        if (_event is null)
        {
            try
            {
                _event = _build!();
            }
            catch (Exception ex)
            {
                _event = new AuditEvent { Time = DateTimeOffset.UtcNow, Kind = "audit.error", Actor = "warden", Detail = "could not build an audit event: " + ex.Message };
            }
        }

        return _event;
    }

    internal void Succeed(AuditEvent written) => _durable.TrySetResult(written);

    internal void Fail(Exception ex) => _durable.TrySetException(ex);
}
