using System.Collections.Concurrent;

namespace Warden.Core.DataGuard;

/// <summary>
/// The labels agents carry after reading labelled data, and fingerprints of what they read, each with an expiry.
/// By default both belong to the agent, across all its sessions (an agent must not shed a label by opening a new
/// session); a policy can opt into per-session labels.
/// </summary>
/// <remarks>
/// The hot path (every call reads an agent's labels and fingerprints) is served from memory only. Durability is the
/// gateway's job: each read that labels an agent yields a <see cref="DataLabelRecord"/> it writes to the store, and
/// records written by earlier runs or other processes come back in through <see cref="Apply(DataLabelRecord)"/>.
/// Applying a record is idempotent (labels keep the later expiry; fingerprints are a union).
/// </remarks>
public sealed class LabelTable
{
    /// <summary>Fingerprints kept per agent (or session) at most.</summary>
    public const int MaxFingerprints = 200_000;

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
    public void Apply(string agent, string session, bool perSession, IEnumerable<string> labels, DateTimeOffset until) =>
        ApplyLabels(perSession ? SessionKey(session) : AgentKey(agent), labels, until);

    private void ApplyLabels(string key, IEnumerable<string> labels, DateTimeOffset until) =>
        Update(key, h =>
        {
            foreach (var l in labels)
            {
                if (!h.Labels.TryGetValue(l, out var old) || old < until)
                {
                    h.Labels[l] = until;
                }
            }
        });

    private void Update(string key, Action<Holder> change)
    {
        while (true)
        {
            var h = _holders.GetOrAdd(key, _ => new Holder());
            lock (h)
            {
                // Pruned between the lookup and the lock: a label written into a removed holder would be lost.
                if (h.Removed)
                {
                    continue;
                }

                change(h);
                return;
            }
        }
    }

    /// <summary>Adds fingerprints of a (normalized) text read by an agent, kept until a time.</summary>
    public void AddFingerprints(string agent, string session, bool perSession, ReadOnlySpan<char> text, DateTimeOffset until)
    {
        var hashes = new HashSet<ulong>();
        Fingerprinter.Add(text, hashes, MaxFingerprints);
        AddFingerprints(perSession ? SessionKey(session) : AgentKey(agent), hashes, until);
    }

    private void AddFingerprints(string key, IReadOnlyCollection<ulong> hashes, DateTimeOffset until) =>
        Update(key, h =>
        {
            if (h.FingerprintsUntil < until)
            {
                h.FingerprintsUntil = until;
            }

            // Readers hold the old set without locking: publish a new one rather than changing it under them.
            h.Fingerprints = h.Fingerprints.Union(hashes, MaxFingerprints);
        });

    /// <summary>Applies a record (from this process, an earlier run or another process on the same store).</summary>
    public void Apply(DataLabelRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var key = record.Session is { } s ? SessionKey(s) : AgentKey(record.Agent);
        ApplyLabels(key, record.Labels, record.Until);
        if (record.Fingerprints.Count > 0)
        {
            AddFingerprints(key, record.Fingerprints as IReadOnlyCollection<ulong> ?? [.. record.Fingerprints], record.Until);
        }
    }

    /// <summary>The fingerprints in force for an agent's session, or null when there are none.</summary>
    public FingerprintSet? FingerprintsOf(string agent, string session, DateTimeOffset now)
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

        return a.Union(s);
    }

    private FingerprintSet? Live(string key, DateTimeOffset now)
    {
        if (!_holders.TryGetValue(key, out var h))
        {
            return null;
        }

        var set = h.Fingerprints;
        return set.Count > 0 && h.FingerprintsUntil > now ? set : null;
    }

    /// <summary>Forgets labels and fingerprints that have lapsed by <paramref name="now"/>.</summary>
    public void Prune(DateTimeOffset now)
    {
        foreach (var (key, h) in _holders)
        {
            lock (h)
            {
                foreach (var label in h.Labels.Where(p => p.Value <= now).Select(p => p.Key).ToList())
                {
                    h.Labels.Remove(label);
                }

                if (h.FingerprintsUntil <= now)
                {
                    h.Fingerprints = FingerprintSet.Empty;
                }

                if (h.Labels.Count == 0 && h.Fingerprints.Count == 0 && _holders.TryRemove(new KeyValuePair<string, Holder>(key, h)))
                {
                    h.Removed = true;
                }
            }
        }
    }

    /// <summary>
    /// The labels an agent carries at a time, for people (status): agent-wide ones with a null session, and those of
    /// its sessions (per-session labels) with the session; each with the time it lapses, sorted by label.
    /// </summary>
    public IReadOnlyList<(string Label, string? Session, DateTimeOffset Until)> Describe(string agent, DateTimeOffset now)
    {
        var found = new List<(string Label, string? Session, DateTimeOffset Until)>();
        foreach (var (key, h) in _holders)
        {
            string? session;
            if (key == AgentKey(agent))
            {
                session = null;
            }
            else if (key.StartsWith("s:" + agent + "/", StringComparison.Ordinal))
            {
                session = key[2..];
            }
            else
            {
                continue;
            }

            lock (h)
            {
                found.AddRange(h.Labels.Where(l => l.Value > now).Select(l => (l.Key, session, l.Value)));
            }
        }

        return [.. found.OrderBy(f => f.Label, StringComparer.Ordinal).ThenBy(f => f.Session, StringComparer.Ordinal)];
    }

    /// <summary>Forgets an agent's labels and fingerprints (an operator clears them).</summary>
    public void Clear(string agent)
    {
        foreach (var key in _holders.Keys.Where(k => k == AgentKey(agent) || k.StartsWith("s:" + agent + "/", StringComparison.Ordinal)))
        {
            if (_holders.TryRemove(key, out var h))
            {
                lock (h)
                {
                    h.Removed = true;
                }
            }
        }
    }

    private static string AgentKey(string agent) => "a:" + agent;

    private static string SessionKey(string session) => "s:" + session;

    private sealed class Holder
    {
        public Dictionary<string, DateTimeOffset> Labels { get; } = new(StringComparer.Ordinal);

        public FingerprintSet Fingerprints { get; set; } = FingerprintSet.Empty;

        public DateTimeOffset FingerprintsUntil { get; set; }

        public bool Removed { get; set; }
    }
}
