using System.Collections.Immutable;
using Warden.Core.Pipeline;

namespace Warden.Core.Stops;

/// <summary>What a stop covers.</summary>
public enum StopScope : byte
{
    /// <summary>Every call of every agent.</summary>
    All = 0,

    /// <summary>Every call of one agent, in all its sessions.</summary>
    Agent = 1,

    /// <summary>Every call of one Warden session.</summary>
    Session = 2,

    /// <summary>Every call to one upstream server.</summary>
    Server = 3,
}

/// <summary>A stop or a pause (a stop a breaker issued). Lifted only by an operator's resume.</summary>
/// <param name="Id">Unique id.</param>
/// <param name="Scope">What it covers.</param>
/// <param name="Target">The agent, session or server name; empty for <see cref="StopScope.All"/>.</param>
/// <param name="By">Who issued it (an operator, or <c>breaker:ID</c>).</param>
/// <param name="Reason">Why.</param>
/// <param name="At">When.</param>
/// <param name="IsPause">True when a breaker paused the agent.</param>
public sealed record StopRecord(string Id, StopScope Scope, string Target, string By, string Reason, DateTimeOffset At, bool IsPause = false)
{
    /// <summary>True when the stop covers a call of this agent, session and server.</summary>
    public bool Covers(string agent, string session, string server) => Scope switch
    {
        StopScope.All => true,
        StopScope.Agent => agent == Target,
        StopScope.Session => session == Target,
        _ => server == Target,
    };

    /// <summary>True when the stop covers the call.</summary>
    public bool Covers(CallContext call) => Scope switch
    {
        StopScope.All => true,
        StopScope.Agent => call.Agent.Name == Target,
        StopScope.Session => call.SessionId == Target,
        _ => call.Server == Target,
    };

    /// <summary>What the agent is told.</summary>
    public string Message => $"{(IsPause ? "paused" : "stopped")} by {By} at {At:yyyy-MM-dd HH:mm:ss}Z: {Reason}";

    /// <summary>The scope as written in the CLI and API: <c>all</c>, <c>agent:NAME</c>, ...</summary>
    public string ScopeText => Scope == StopScope.All ? "all" : $"{Scope.ToString().ToLowerInvariant()}:{Target}";
}

/// <summary>
/// The stops in force: an immutable snapshot swapped atomically, so the stop check costs one volatile read
/// and, when nothing is stopped, nothing else.
/// </summary>
public sealed class StopTable
{
    private readonly Lock _gate = new();
    private ImmutableArray<StopRecord> _stops = [];

    /// <summary>The stops in force.</summary>
    public ImmutableArray<StopRecord> Stops => _stops;

    /// <summary>The first stop covering a call, or null.</summary>
    public StopRecord? Find(CallContext call)
    {
        var stops = _stops;
        foreach (var s in stops)
        {
            if (s.Covers(call))
            {
                return s;
            }
        }

        return null;
    }

    /// <summary>The stop in force on an agent (agent or all scope), or null.</summary>
    public StopRecord? ForAgent(string agent)
    {
        foreach (var s in _stops)
        {
            if (s.Scope == StopScope.All || (s.Scope == StopScope.Agent && s.Target == agent))
            {
                return s;
            }
        }

        return null;
    }

    /// <summary>Adds a stop (idempotent by id).</summary>
    public void Add(StopRecord stop)
    {
        // Writers are rare (a person or a breaker); readers never take the lock.
        lock (_gate)
        {
            if (!_stops.Any(s => s.Id == stop.Id))
            {
                _stops = _stops.Add(stop);
            }
        }
    }

    /// <summary>
    /// Adds a pause unless one by the same author on the same scope is in force; returns the pause in force.
    /// Atomic, so a breaker tripped by many concurrent calls pauses the agent once.
    /// </summary>
    public StopRecord AddPauseOnce(StopRecord pause)
    {
        lock (_gate)
        {
            foreach (var s in _stops)
            {
                if (s.IsPause && s.Scope == pause.Scope && s.Target == pause.Target && s.By == pause.By)
                {
                    return s;
                }
            }

            _stops = _stops.Add(pause);
            return pause;
        }
    }

    /// <summary>Removes a stop; true when it was in force.</summary>
    public bool Remove(string id)
    {
        lock (_gate)
        {
            var current = _stops;
            var next = current.RemoveAll(s => s.Id == id);
            _stops = next;
            return next.Length != current.Length;
        }
    }

    /// <summary>Replaces every stop (after reading the store).</summary>
    public void Replace(IEnumerable<StopRecord> stops)
    {
        lock (_gate)
        {
            _stops = [.. stops];
        }
    }
}

/// <summary>The stop check: the first stage, before policy.</summary>
public sealed class StopStage(StopTable stops, Func<string> policyVersion) : IDecisionStage
{
    /// <inheritdoc />
    public string Name => "stop";

    /// <inheritdoc />
    public Decision? Evaluate(CallContext call) =>
        stops.Find(call) is { } stop ? new Decision(Effect.Deny, stop.IsPause ? "pause" : "stop", stop.Message, policyVersion()) : null;
}
