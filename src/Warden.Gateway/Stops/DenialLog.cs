using System.Collections.Concurrent;

namespace Warden.Gateway.Stops;

/// <summary>One refused call, for status and the dashboard.</summary>
public sealed record DenialView(DateTimeOffset At, string Tool, string Rule, string Reason);

/// <summary>The last refused calls of each agent, kept in memory (the audit keeps them all).</summary>
public sealed class DenialLog
{
    private const int PerAgent = 20;
    private readonly ConcurrentDictionary<string, Queue<DenialView>> _byAgent = new(StringComparer.Ordinal);

    /// <summary>Remembers a refusal.</summary>
    public void Add(string agent, DenialView denial)
    {
        var queue = _byAgent.GetOrAdd(agent, _ => new Queue<DenialView>());
        lock (queue)
        {
            queue.Enqueue(denial);
            while (queue.Count > PerAgent)
            {
                queue.Dequeue();
            }
        }
    }

    /// <summary>An agent's recent refusals, newest first.</summary>
    public IReadOnlyList<DenialView> Recent(string agent)
    {
        if (!_byAgent.TryGetValue(agent, out var queue))
        {
            return [];
        }

        lock (queue)
        {
            return [.. queue.Reverse()];
        }
    }
}
