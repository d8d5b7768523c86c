using System.Threading.Channels;
using Warden.Core.Storage;

namespace Warden.Core.Audit;

/// <summary>
/// Group commit in front of an <see cref="IAuditStore"/>: callers enqueue events without waiting (a bounded
/// channel), one writer drains whatever is queued, appends it in one transaction, and completes each event's
/// <see cref="AuditReceipt"/> when it is durable. Under load many events share one commit (and one fsync).
/// </summary>
/// <remarks>
/// The writer runs on a thread of its own, because a store write may block (a held lock, a stalled disk) and
/// must not take a thread-pool thread with it. A failed append fails every event of its batch with the
/// store's exception and the writer goes on with the next batch, so the log resumes when the store does.
/// A full queue refuses new events at once (<see cref="StoreUnavailableException"/>) instead of blocking.
/// </remarks>
public sealed class AuditWriter : IAsyncDisposable
{
    private readonly IAuditStore _store;
    private readonly Channel<AuditReceipt> _queue;
    private readonly int _maxBatch;
    private readonly Thread _thread;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _written;
    private long _batches;
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
        _maxBatch = maxBatch;
        _queue = Channel.CreateBounded<AuditReceipt>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full; nothing ever waits
        });
        _thread = new Thread(Run) { IsBackground = true, Name = "warden-audit-writer" };
        _thread.Start();
    }

    /// <summary>Events written so far.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Transactions committed so far.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Batches that failed.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>True while the last append failed (cleared by the next success).</summary>
    public bool Failing { get; private set; }

    /// <summary>The last append failure, while <see cref="Failing"/>.</summary>
    public Exception? LastError { get; private set; }

    /// <summary>Raised (on the writer thread) after each successful append with the events as written.</summary>
    public event Action<IReadOnlyList<AuditEvent>>? Appended;

    /// <summary>Queues an event. Never blocks; the receipt completes when the event is durable, or fails.</summary>
    public AuditReceipt Enqueue(AuditEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return Enqueue(new AuditReceipt(e, null));
    }

    /// <summary>
    /// Queues an event built later, on the writer's thread, just before it is written: the caller's path then
    /// pays for an allocation and a queue write, not for serializing and masking arguments. The factory must only
    /// read immutable state. If it throws, an <c>audit.error</c> event takes its place (the chain has no holes).
    /// </summary>
    public AuditReceipt Enqueue(Func<AuditEvent> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        return Enqueue(new AuditReceipt(null, build));
    }

    private AuditReceipt Enqueue(AuditReceipt receipt)
    {
        if (!_queue.Writer.TryWrite(receipt))
        {
            receipt.Fail(new StoreUnavailableException(_done.Task.IsCompleted
                ? "The audit writer has stopped."
                : "The audit queue is full: the audit store is not keeping up or not writing."));
        }

        return receipt;
    }

    private void Run()
    {
        var batch = new List<AuditReceipt>(_maxBatch);
        var events = new List<AuditEvent>(_maxBatch);
        var initialized = false;
        var reader = _queue.Reader;
        try
        {
            while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            {
                batch.Clear();
                events.Clear();
                while (batch.Count < _maxBatch && reader.TryRead(out var r))
                {
                    batch.Add(r);
                    events.Add(r.Materialize());
                }

                try
                {
                    if (!initialized)
                    {
                        _store.InitializeAsync().AsTask().GetAwaiter().GetResult();
                        initialized = true;
                    }

                    var written = _store.AppendAsync(events).AsTask().GetAwaiter().GetResult();
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
            }
        }
        finally
        {
            while (reader.TryRead(out var r))
            {
                r.Fail(new StoreUnavailableException("The audit writer has stopped."));
            }

            _done.TrySetResult();
        }
    }

    /// <summary>Stops taking events, writes what is queued, and waits for the writer (up to 10 s).</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _done.Task.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
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
