using System.Globalization;
using System.Text.RegularExpressions;
using Warden.Core.Policy;

namespace Warden.Core.Limits;

/// <summary>What a limit counts.</summary>
public enum LimitKind : byte
{
    /// <summary>A token bucket: a sustained rate with a burst.</summary>
    Rate,

    /// <summary>At most N calls in a sliding window (at most 50 deletions a day).</summary>
    Budget,

    /// <summary>At most N calls in flight at once.</summary>
    Concurrency,

    /// <summary>More than N calls in a window pauses the agent until a human resumes it.</summary>
    Breaker,
}

/// <summary>What happens when a limit is exceeded.</summary>
public enum ExceedAction : byte
{
    /// <summary>Refuse the call.</summary>
    Deny,

    /// <summary>Hold the call for a human.</summary>
    Ask,

    /// <summary>Refuse the call and pause the agent (a stop naming the limit) until an operator resumes it.</summary>
    PauseAgent,
}

/// <summary>Who shares a limit's count.</summary>
public enum LimitPer : byte
{
    /// <summary>One count per agent, across all its sessions (the default: a new session must not reset a limit).</summary>
    Agent,

    /// <summary>One count per Warden session.</summary>
    Session,

    /// <summary>One count for everybody.</summary>
    Global,
}

/// <summary>A compiled limit from policy.</summary>
public sealed partial class LimitRule
{
    /// <summary>The limit's id, named in denials, pauses and the audit.</summary>
    public required string Id { get; init; }

    /// <summary>Which calls count; the same fields as a rule's match.</summary>
    public required RuleEntry Match { get; init; }

    /// <summary>What it counts.</summary>
    public LimitKind Kind { get; init; }

    /// <summary>Calls allowed per <see cref="Window"/> (rate, budget, breaker) or at once (concurrency).</summary>
    public int Count { get; init; }

    /// <summary>The window (rate: the refill period of <see cref="Count"/> tokens).</summary>
    public TimeSpan Window { get; init; }

    /// <summary>Bucket size for rate limits (defaults to <see cref="Count"/>).</summary>
    public int Burst { get; init; }

    /// <summary>Who shares the count.</summary>
    public LimitPer Per { get; init; }

    /// <summary>What happens when exceeded.</summary>
    public ExceedAction OnExceed { get; init; }

    /// <summary>Where it was written.</summary>
    public SourceSpan At { get; init; }

    /// <summary>The counters' table for this limit in the <see cref="LimitCounters"/> that last counted it (a look-up cache).</summary>
    internal LimitCounters.CounterTableRef? CounterTable { get; set; }

    /// <summary>This limit's figures in a clock's timestamp units, computed once per clock frequency (a cache).</summary>
    internal LimitTiming TimingFor(long frequency)
    {
        var t = _timing;
        if (t is null || t.Frequency != frequency)
        {
            t = new LimitTiming(this, frequency);
            _timing = t;
        }

        return t;
    }

    private LimitTiming? _timing;

    /// <summary>Words for messages: "10 per 1 min".</summary>
    public string Describe() => Kind switch
    {
        LimitKind.Concurrency => $"at most {Count} at once",
        LimitKind.Breaker => $"more than {Count} in {Words(Window)}",
        _ => $"{Count} per {Words(Window)}",
    };

    private static string Words(TimeSpan t) =>
        t.TotalDays >= 1 && t.TotalDays % 1 == 0 ? $"{t.TotalDays:0} d"
        : t.TotalHours >= 1 && t.TotalHours % 1 == 0 ? $"{t.TotalHours:0} h"
        : t.TotalMinutes >= 1 && t.TotalMinutes % 1 == 0 ? $"{t.TotalMinutes:0} min"
        : $"{t.TotalSeconds:0.###} s";

    /// <summary>Parses "10 per minute", "10/min", "50 per day", "10 in 60s", "5 per 30s".</summary>
    public static bool TryParseAmount(string text, out int count, out TimeSpan window) => TryParseAmount(text, out count, out window, out _);

    /// <summary>Also returns a trailing "per agent|session|global", when written.</summary>
    public static bool TryParseAmount(string text, out int count, out TimeSpan window, out LimitPer? per)
    {
        per = null;
        count = 0;
        window = default;
        var m = AmountRegex().Match(text.Trim());
        if (!m.Success || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count <= 0)
        {
            return false;
        }

        var unit = m.Groups[2].Value.ToLowerInvariant();
        window = unit switch
        {
            "second" or "sec" or "s" => TimeSpan.FromSeconds(1),
            "minute" or "min" or "m" => TimeSpan.FromMinutes(1),
            "hour" or "h" => TimeSpan.FromHours(1),
            "day" or "d" => TimeSpan.FromDays(1),
            _ => Text.YamlReader.TryParseDuration(unit, out var d) && d > TimeSpan.Zero ? d : TimeSpan.Zero,
        };
        if (m.Groups[3].Success)
        {
            per = m.Groups[3].Value.ToLowerInvariant() switch { "session" => LimitPer.Session, "global" => LimitPer.Global, _ => LimitPer.Agent };
        }

        return window > TimeSpan.Zero;
    }

    [GeneratedRegex(@"^(\d+)\s*(?:per|/|in)\s*([0-9.]*\s*[A-Za-z]+)(?:\s+per\s+(agent|session|global))?$", RegexOptions.IgnoreCase)]
    private static partial Regex AmountRegex();
}

/// <summary>
/// A limit's figures in timestamp units, so the hot path compares and adds integers and multiplies once instead
/// of building TimeSpans and dividing. Immutable and published whole: a racing reader sees one or the other.
/// </summary>
internal sealed class LimitTiming
{
    /// <summary>Buckets of a large sliding window (a power of two: slots are found with a mask).</summary>
    public const int Buckets = 64;

    public LimitTiming(LimitRule limit, long frequency)
    {
        Frequency = frequency;
        Capacity = limit.Burst > 0 ? limit.Burst : limit.Count;
        WindowTicks = Math.Max(1, (long)(limit.Window.TotalSeconds * frequency));
        WindowTicksExact = limit.Window.TotalSeconds * frequency;
        BucketTicks = Math.Max(1, WindowTicks / Buckets);
    }

    /// <summary>The clock's timestamps per second.</summary>
    public long Frequency { get; }

    /// <summary>Token bucket size (rate limits).</summary>
    public int Capacity { get; }

    /// <summary>The window in timestamp units.</summary>
    public long WindowTicks { get; }

    /// <summary>
    /// The window in timestamp units as a double, for refills: elapsed * count / this is exact for whole-second
    /// steps, where a precomputed rate per unit would leave 0.999... of a token (and refuse a call it should allow).
    /// </summary>
    public double WindowTicksExact { get; }

    /// <summary>One of the 64 buckets of a large sliding window.</summary>
    public long BucketTicks { get; }
}
