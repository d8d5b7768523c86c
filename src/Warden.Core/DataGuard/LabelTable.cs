using System.Collections.Concurrent;

namespace Warden.Core.DataGuard;

/// <summary>
/// The labels agents carry after reading labelled data, and fingerprints of what they read, each with an expiry.
/// By default both belong to the agent, across all its sessions (an agent must not shed a label by opening a new
/// session); a policy can opt into per-session labels. In memory; fed by the result path, read by the pipeline.
/// </summary>
public sealed class LabelTable
{
    private const int MaxFingerprints = 200_000;
    private readonly ConcurrentDictionary<string, Holder> _holders = new(StringComparer.Ordinal);

    /// <summary>The labels in force for an agent's session at a time (agent-wide and the session's own).</summary>
    public IReadOnlyCollection<string> LabelsOf(string agent, string session, DateTimeOffset now)
    {
        if (_holders.IsEmpty)
        {
            return [];
        }

        HashSet<string>? labels = null;
        Collect(AgentKey(agent), now, ref labels);
        Collect(SessionKey(session), now, ref labels);
        return labels is null ? [] : labels;
    }

    private void Collect(string key, DateTimeOffset now, ref HashSet<string>? labels)
    {
        if (!_holders.TryGetValue(key, out var h))
        {
            return;
        }

        lock (h)
        {
            foreach (var (label, until) in h.Labels)
            {
                if (until > now)
                {
                    (labels ??= new HashSet<string>(StringComparer.Ordinal)).Add(label);
                }
            }
        }
    }

    /// <summary>Gives labels until a time (a later expiry extends an earlier one).</summary>
    public void Apply(string agent, string session, bool perSession, IEnumerable<string> labels, DateTimeOffset until)
    {
        var h = _holders.GetOrAdd(perSession ? SessionKey(session) : AgentKey(agent), _ => new Holder());
        lock (h)
        {
            foreach (var l in labels)
            {
                if (!h.Labels.TryGetValue(l, out var old) || old < until)
                {
                    h.Labels[l] = until;
                }
            }
        }
    }

    /// <summary>Adds fingerprints of a (normalized) text read by an agent, kept until a time.</summary>
    public void AddFingerprints(string agent, string session, bool perSession, ReadOnlySpan<char> text, DateTimeOffset until)
    {
        var h = _holders.GetOrAdd(perSession ? SessionKey(session) : AgentKey(agent), _ => new Holder());
        lock (h)
        {
            if (h.FingerprintsUntil < until)
            {
                h.FingerprintsUntil = until;
            }

            var copy = new HashSet<ulong>(h.Fingerprints);
            Fingerprinter.Add(text, copy, MaxFingerprints);
            // Readers hold the old set without locking: publish a new one rather than changing it under them.
            h.Fingerprints = copy;
        }
    }

    /// <summary>The fingerprints in force for an agent's session, or null when there are none.</summary>
    public IReadOnlySet<ulong>? FingerprintsOf(string agent, string session, DateTimeOffset now)
    {
        if (_holders.IsEmpty)
        {
            return null;
        }

        var a = Live(AgentKey(agent), now);
        var s = Live(SessionKey(session), now);
        if (a is null || s is null)
        {
            return a ?? s;
        }

        var both = new HashSet<ulong>(a);
        both.UnionWith(s);
        return both;
    }

    private HashSet<ulong>? Live(string key, DateTimeOffset now)
    {
        if (!_holders.TryGetValue(key, out var h))
        {
            return null;
        }

        var set = h.Fingerprints;
        return set.Count > 0 && h.FingerprintsUntil > now ? set : null;
    }

    /// <summary>Forgets an agent's labels and fingerprints (an operator clears them).</summary>
    public void Clear(string agent)
    {
        _holders.TryRemove(AgentKey(agent), out _);
        foreach (var key in _holders.Keys.Where(k => k.StartsWith("s:" + agent + "/", StringComparison.Ordinal)))
        {
            _holders.TryRemove(key, out _);
        }
    }

    private static string AgentKey(string agent) => "a:" + agent;

    private static string SessionKey(string session) => "s:" + session;

    private sealed class Holder
    {
        public Dictionary<string, DateTimeOffset> Labels { get; } = new(StringComparer.Ordinal);

        public HashSet<ulong> Fingerprints { get; set; } = [];

        public DateTimeOffset FingerprintsUntil { get; set; }
    }
}
