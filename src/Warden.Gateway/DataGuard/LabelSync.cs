using Microsoft.Extensions.Logging;
using Warden.Core.DataGuard;
using Warden.Core.Storage;

namespace Warden.Gateway.DataGuard;

/// <summary>
/// Keeps the in-memory <see cref="LabelTable"/> and the store in step, so a label outlives the process that gave it
/// and reaches every process on the store. The hot path never touches the store:
/// <list type="bullet">
/// <item>a read that labels an agent is written through (<see cref="RecordAsync"/>) before its result reaches the agent;</item>
/// <item>at start every record still in force is loaded (<see cref="LoadAsync"/>), before the listener takes a call;</item>
/// <item>records other processes add arrive through the change feed (<see cref="OnChangeAsync"/>, topic <c>label</c>);</item>
/// <item>lapsed records are pruned from the store and the table every <see cref="PruneEvery"/>.</item>
/// </list>
/// </summary>
/// <remarks>
/// Fail closed: a record that cannot be written within <see cref="StoreBound"/> stays in force in memory and is
/// retried until it is written (it is never dropped while the process lives), and the caller withholds the result,
/// so data whose label is not durable never reaches the agent.
/// </remarks>
public sealed partial class LabelSync : IAsyncDisposable
{
    /// <summary>How long a result waits for its label to be written before it is withheld.</summary>
    public static readonly TimeSpan StoreBound = TimeSpan.FromSeconds(2);

    /// <summary>How often lapsed labels are pruned.</summary>
    public static readonly TimeSpan PruneEvery = TimeSpan.FromHours(1);

    private const int Page = 500;

    private readonly LabelTable _table;
    private readonly IWardenStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly List<DataLabelRecord> _unrecorded = [];
    private readonly SemaphoreSlim _reading = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private long _lastSequence;
    private Task? _retry;
    private Task? _pruning;

    /// <summary>Creates the sync for a table and a store.</summary>
    public LabelSync(LabelTable table, IWardenStore store, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _table = table;
        _store = store;
        _time = time;
        _logger = loggerFactory.CreateLogger("Warden.DataGuard");
    }

    /// <summary>Records not yet written to the store (in force in this process only).</summary>
    public int Unrecorded
    {
        get
        {
            lock (_gate)
            {
                return _unrecorded.Count;
            }
        }
    }

    /// <summary>Loads every record in force and starts pruning. Call after taking the change feed's position.</summary>
    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _store.PruneDataLabelsAsync(_time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        }
        catch (StoreUnavailableException ex)
        {
            // Housekeeping only (lapsed records are never listed); the load below must not fail for it.
            LogPruneFailed(_logger, ex.Message);
        }

        await CatchUpAsync(cancellationToken).ConfigureAwait(false);
        _pruning ??= Task.Run(PruneLoopAsync, CancellationToken.None);
    }

    /// <summary>A label change on the feed: reads the records added since the last one seen.</summary>
    public Task OnChangeAsync(CancellationToken cancellationToken) => CatchUpAsync(cancellationToken);

    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        await _reading.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (true)
            {
                var page = await _store.ListDataLabelsAsync(_time.GetUtcNow(), _lastSequence, Page, cancellationToken).ConfigureAwait(false);
                foreach (var record in page)
                {
                    // Idempotent: this process's own records come back here too and change nothing.
                    _table.Apply(record);
                    _lastSequence = Math.Max(_lastSequence, record.Sequence);
                }

                if (page.Count < Page)
                {
                    return;
                }
            }
        }
        finally
        {
            _reading.Release();
        }
    }

    /// <summary>
    /// Writes a record the result path has already applied in memory. True once it is durable; false when the store
    /// could not take it in time (it stays in force here and is retried until written).
    /// </summary>
    public async Task<bool> RecordAsync(DataLabelRecord record)
    {
        try
        {
            using var bound = new CancellationTokenSource(StoreBound, _time);

            // WaitAsync as well as the token: SQLite waits for a locked file inside native code, where no token is
            // seen. The write may still land later; the retry writes the same id, which the store ignores.
            await _store.AddDataLabelAsync(record, bound.Token).AsTask().WaitAsync(StoreBound, _time, CancellationToken.None).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is StoreUnavailableException or OperationCanceledException or TimeoutException)
        {
            lock (_gate)
            {
                _unrecorded.Add(record);
                _retry ??= Task.Run(RetryAsync, CancellationToken.None);
            }

            LogUnrecorded(_logger, record.Agent, string.Join(",", record.Labels), ex.Message);
            return false;
        }
    }

    private async Task RetryAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), _time, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            DataLabelRecord[] pending;
            lock (_gate)
            {
                if (_unrecorded.Count == 0)
                {
                    _retry = null;
                    return;
                }

                pending = [.. _unrecorded];
            }

            foreach (var record in pending)
            {
                try
                {
                    using var bound = new CancellationTokenSource(StoreBound, _time);
                    await _store.AddDataLabelAsync(record, bound.Token).AsTask().WaitAsync(StoreBound, _time, CancellationToken.None).ConfigureAwait(false);
                    lock (_gate)
                    {
                        _unrecorded.Remove(record);
                    }

                    LogRecordedLate(_logger, record.Agent);
                }
                catch (Exception ex) when (ex is StoreUnavailableException or OperationCanceledException or TimeoutException or ObjectDisposedException)
                {
                    break;
                }
            }
        }

        lock (_gate)
        {
            _retry = null;
        }
    }

    private async Task PruneLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(PruneEvery, _time, _stopping.Token).ConfigureAwait(false);
                var now = _time.GetUtcNow();
                _table.Prune(now);
                await _store.PruneDataLabelsAsync(now, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is StoreUnavailableException or ObjectDisposedException)
            {
                // Pruning is housekeeping: lapsed rows are never returned anyway; try again next time.
                LogPruneFailed(_logger, ex.Message);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var task in new[] { _retry, _pruning })
        {
            if (task is not null)
            {
                await task.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        // A last attempt for what is still pending (a write that timed out may well have landed since).
        DataLabelRecord[] pending;
        lock (_gate)
        {
            pending = [.. _unrecorded];
        }

        var lost = 0;
        foreach (var record in pending)
        {
            try
            {
                using var bound = new CancellationTokenSource(StoreBound, _time);
                await _store.AddDataLabelAsync(record, bound.Token).AsTask().WaitAsync(StoreBound, _time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is StoreUnavailableException or OperationCanceledException or TimeoutException or ObjectDisposedException)
            {
                lost++;
            }
        }

        if (lost > 0)
        {
            LogLostOnExit(_logger, lost);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Data label for agent {Agent} ({Labels}) is in force here but not recorded: {Error}; the result was withheld; retrying")]
    private static partial void LogUnrecorded(ILogger logger, string agent, string labels, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Data label for agent {Agent} recorded after the store returned")]
    private static partial void LogRecordedLate(ILogger logger, string agent);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pruning lapsed data labels failed: {Error}")]
    private static partial void LogPruneFailed(ILogger logger, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} data label(s) were never recorded (the store stayed unavailable); their results were withheld")]
    private static partial void LogLostOnExit(ILogger logger, int count);
}
