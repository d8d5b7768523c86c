using Microsoft.Data.Sqlite;

namespace Warden.Storage.Sqlite;

/// <summary>
/// Wakes the watchers of one store when the change feed may have grown. Two sources:
/// <list type="bullet">
/// <item>this store published a change: <see cref="Pulse"/> is called right after the commit;</item>
/// <item>any other connection (another store instance, another process) committed to the file: one
/// background loop per store, running while at least one watcher exists, reads <c>PRAGMA data_version</c>
/// on its own unpooled connection every poll interval and pulses when the value moved.</item>
/// </list>
/// A watcher takes <see cref="NextPulse"/> <em>before</em> it reads the table, so a pulse that arrives
/// while it reads or while its consumer is busy is never lost.
/// </summary>
internal sealed class ChangeNotifier : IAsyncDisposable
{
    private readonly Func<CancellationToken, ValueTask<SqliteConnection>> _openDedicated;
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private TaskCompletionSource _pulse = NewPulse();
    private int _subscribers;
    private Poller? _poller;
    private bool _disposed;

    public ChangeNotifier(Func<CancellationToken, ValueTask<SqliteConnection>> openDedicated, TimeSpan interval, TimeProvider time)
    {
        _openDedicated = openDedicated;
        _interval = interval;
        _time = time;
    }

    /// <summary>Completes at the next pulse after this call.</summary>
    public Task NextPulse
    {
        get
        {
            lock (_gate)
            {
                return _pulse.Task;
            }
        }
    }

    /// <summary>Number of running poll loops (0 or 1; tests use it to check watchers clean up).</summary>
    internal int ActivePollers
    {
        get
        {
            lock (_gate)
            {
                return _poller is null ? 0 : 1;
            }
        }
    }

    /// <summary>Wakes every watcher.</summary>
    public void Pulse()
    {
        TaskCompletionSource previous;
        lock (_gate)
        {
            previous = _pulse;
            _pulse = NewPulse();
        }

        previous.TrySetResult();
    }

    /// <summary>
    /// Registers a watcher; starts the poll loop for the first one. Completes once the loop has read its
    /// first <c>data_version</c>, so every commit after this returns is detected.
    /// </summary>
    public async ValueTask<Subscription> SubscribeAsync(CancellationToken cancellationToken)
    {
        Poller poller;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_poller is null || _poller.Fault is not null)
            {
                _poller?.Stop();
                _poller = new Poller(this);
            }

            poller = _poller;
            _subscribers++;
        }

        var subscription = new Subscription(this, poller);
        try
        {
            await poller.Ready.WaitAsync(cancellationToken).ConfigureAwait(false);
            return subscription;
        }
        catch
        {
            subscription.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Poller? poller;
        lock (_gate)
        {
            _disposed = true;
            poller = _poller;
            _poller = null;
        }

        if (poller is not null)
        {
            poller.Stop();
            await poller.Completion.ConfigureAwait(false);
        }

        Pulse();
    }

    private void Unsubscribe(Poller poller)
    {
        lock (_gate)
        {
            _subscribers--;
            if (_subscribers == 0 && ReferenceEquals(_poller, poller))
            {
                _poller = null;
                poller.Stop();
            }
        }
    }

    private static TaskCompletionSource NewPulse() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A watcher's registration; disposing it stops the poll loop when it was the last.</summary>
    public sealed class Subscription : IDisposable
    {
        private readonly ChangeNotifier _owner;
        private readonly Poller _poller;
        private int _disposed;

        internal Subscription(ChangeNotifier owner, Poller poller)
        {
            _owner = owner;
            _poller = poller;
        }

        /// <summary>Why the poll loop stopped, if it failed; the watcher must then report the fault.</summary>
        public Exception? Fault => _poller.Fault;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _owner.Unsubscribe(_poller);
            }
        }
    }

    /// <summary>One run of the data_version loop.</summary>
    internal sealed class Poller
    {
        private readonly ChangeNotifier _owner;
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile Exception? _fault;

        public Poller(ChangeNotifier owner)
        {
            _owner = owner;
            Completion = Task.Run(RunAsync);
        }

        public Task Ready => _ready.Task;

        public Task Completion { get; }

        public Exception? Fault => _fault;

        public void Stop()
        {
            try
            {
                _stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already stopped and cleaned up.
            }
        }

        private async Task RunAsync()
        {
            var token = _stop.Token;
            SqliteConnection? connection = null;
            try
            {
                connection = await _owner._openDedicated(token).ConfigureAwait(false);
                using var command = connection.CreateCommand();
                command.CommandText = "PRAGMA data_version;";
                var last = await ReadVersionAsync(command, token).ConfigureAwait(false);
                _ready.TrySetResult();
                while (true)
                {
                    await Task.Delay(_owner._interval, _owner._time, token).ConfigureAwait(false);
                    var version = await ReadVersionAsync(command, token).ConfigureAwait(false);
                    if (version != last)
                    {
                        last = version;
                        _owner.Pulse();
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                _ready.TrySetCanceled(token);
            }
            catch (Exception ex)
            {
                _fault = ex;
                _ready.TrySetException(ex);
                _owner.Pulse();
            }
            finally
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                }

                _stop.Dispose();
            }
        }

        private static async Task<long> ReadVersionAsync(SqliteCommand command, CancellationToken token) =>
            Convert.ToInt64(await command.ExecuteScalarAsync(token).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }
}
