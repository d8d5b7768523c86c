using System.Diagnostics;
using System.Threading.Channels;
using Warden.Core.Storage;

namespace Warden.Storage.Contract;

/// <summary>A change received by a <see cref="ChangeCollector"/>, with when it arrived.</summary>
/// <param name="Change">The change.</param>
/// <param name="ReceivedAt">A <see cref="Stopwatch.GetTimestamp"/> value.</param>
public sealed record ReceivedChange(StoreChange Change, long ReceivedAt);

/// <summary>Runs <see cref="IWardenStore.WatchAsync"/> in the background and queues what it yields.</summary>
public sealed class ChangeCollector : IAsyncDisposable
{
    private readonly Channel<ReceivedChange> _received = Channel.CreateUnbounded<ReceivedChange>();
    private readonly CancellationTokenSource _stop = new();

    private ChangeCollector(IWardenStore store, long afterId)
    {
        Completion = Task.Run(async () =>
        {
            try
            {
                await foreach (var change in store.WatchAsync(afterId, _stop.Token))
                {
                    _received.Writer.TryWrite(new ReceivedChange(change, Stopwatch.GetTimestamp()));
                }

                _received.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                _received.Writer.TryComplete(ex);
                throw;
            }
        });
    }

    /// <summary>The background enumeration: completes when it ends, faults when it throws.</summary>
    public Task Completion { get; }

    /// <summary>Starts watching changes after <paramref name="afterId"/>.</summary>
    public static ChangeCollector Start(IWardenStore store, long afterId) => new(store, afterId);

    /// <summary>The next change, failing the test when none arrives within <paramref name="timeout"/>.</summary>
    public async Task<ReceivedChange> NextAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await _received.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"No change arrived within {timeout.TotalMilliseconds} ms.");
        }
        catch (ChannelClosedException ex) when (ex.InnerException is not null)
        {
            throw ex.InnerException;
        }
    }

    /// <summary>Reads <paramref name="count"/> changes.</summary>
    public async Task<List<StoreChange>> TakeAsync(int count, TimeSpan timeout)
    {
        var changes = new List<StoreChange>(count);
        for (var i = 0; i < count; i++)
        {
            changes.Add((await NextAsync(timeout)).Change);
        }

        return changes;
    }

    /// <summary>True when nothing is queued right now.</summary>
    public bool IsEmpty => !_received.Reader.TryPeek(out _);

    /// <summary>Cancels the enumeration (which must end cleanly) and waits for it.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Completion;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Completion;
        }
        catch
        {
            // Reported by the test that observed it, if any.
        }

        _stop.Dispose();
    }
}
