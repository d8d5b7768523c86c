using System.Diagnostics;

namespace Warden.Gateway.Stops;

/// <summary>
/// The barrier behind a stop's acknowledgement. Every call holds a pass from before its stop check until it is
/// registered as in flight (where a stop can cancel it). A stop first closes the gate for its scope (the stop
/// table), then flips the epoch and waits for the passes of the old epoch to be returned: after that, every
/// call that passed the stop check before the stop is registered, and every later call sees the stop.
/// </summary>
internal sealed class AdmissionGate
{
    private readonly long[] _counts = new long[2];
    private readonly Lock _flip = new();
    private long _epoch;

    /// <summary>Takes a pass.</summary>
    public Pass Enter()
    {
        while (true)
        {
            var epoch = Volatile.Read(ref _epoch);
            Interlocked.Increment(ref _counts[epoch & 1]);
            if (Volatile.Read(ref _epoch) == epoch)
            {
                return new Pass(this, epoch);
            }

            // A stop flipped the epoch between the read and the increment: retry in the new one.
            Interlocked.Decrement(ref _counts[epoch & 1]);
        }
    }

    /// <summary>Waits until every pass taken before this call is returned.</summary>
    public async ValueTask DrainAsync(CancellationToken cancellationToken)
    {
        long old;
        lock (_flip)
        {
            old = _epoch;
            Volatile.Write(ref _epoch, old + 1);
        }

        // Passes are held for microseconds (a policy decision), but on a busy machine the thread holding one may be
        // descheduled. Spin, then yield the core (the holder may be waiting for it) for up to YieldFor; only then
        // wait on a timer, whose continuation queues behind every work item of a busy thread pool.
        var spinner = default(SpinWait);
        var started = Stopwatch.GetTimestamp();
        while (Volatile.Read(ref _counts[old & 1]) > 0)
        {
            if (Stopwatch.GetElapsedTime(started) < YieldFor)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
            }
            else
            {
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static readonly TimeSpan YieldFor = TimeSpan.FromMilliseconds(2);

    /// <summary>A pass; returning it twice is harmless.</summary>
    public sealed class Pass(AdmissionGate gate, long epoch) : IDisposable
    {
        private int _returned;

        /// <inheritdoc />
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _returned, 1) == 0)
            {
                Interlocked.Decrement(ref gate._counts[epoch & 1]);
            }
        }
    }
}
