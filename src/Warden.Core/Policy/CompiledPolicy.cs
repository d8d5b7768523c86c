using System.Collections.Concurrent;
using Warden.Core.Conditions;
using Warden.Core.Pipeline;

namespace Warden.Core.Policy;

/// <summary>The result of a rule's condition for one call.</summary>
/// <param name="Value">True when the condition holds.</param>
/// <param name="Error">Set when evaluation failed; <paramref name="Value"/> is then meaningless.</param>
public readonly record struct ConditionVerdict(bool Value, string? Error = null)
{
    /// <summary>Holds.</summary>
    public static ConditionVerdict True => new(true);

    /// <summary>Does not hold.</summary>
    public static ConditionVerdict False => new(false);
}

/// <summary>A compiled rule condition.</summary>
public interface IRuleCondition
{
    /// <summary>Evaluates the condition for a call. Never throws: failures are verdicts with an error.</summary>
    ConditionVerdict Evaluate(CallContext call, ToolClasses classes, IReadOnlyList<string> policyGroups);
}

/// <summary>A rule ready to evaluate.</summary>
public sealed class CompiledRule
{
    internal CompiledRule(RuleEntry entry, IRuleCondition? condition, int index)
    {
        Entry = entry;
        Condition = condition;
        Cel = condition as PolicyConditions.CelRuleCondition;
        Index = index;
        AgentNames = [.. entry.AgentNames];
        Groups = [.. entry.Groups];
    }

    /// <summary>The rule as written.</summary>
    public RuleEntry Entry { get; }

    /// <summary>The rule's id.</summary>
    public string Id => Entry.Id;

    /// <summary>The compiled condition, if any.</summary>
    public IRuleCondition? Condition { get; }

    /// <summary>The condition when it is a CEL condition, which decisions evaluate with a shared argument cache.</summary>
    internal PolicyConditions.CelRuleCondition? Cel { get; }

    // Arrays of the entry's lists: decisions test them for every candidate, without interface dispatch.
    internal string[] AgentNames { get; }

    internal string[] Groups { get; }

    /// <summary>Position in the policy.</summary>
    public int Index { get; }

    /// <summary>
    /// When other rules of the policy have the same condition text, the slot where a decision remembers its answer
    /// (conditions are pure functions of the call, so one answer serves them all); otherwise -1.
    /// </summary>
    internal int MemoSlot { get; set; } = -1;

    internal bool MatchesTarget(McpOperation operation, string server, string target)
    {
        if (!Entry.Operations.Contains(operation))
        {
            return false;
        }

        if (Entry.Servers.Count > 0 && !AnyMatch(Entry.Servers, server))
        {
            return false;
        }

        return Entry.Targets.Count == 0 || AnyMatch(Entry.Targets, target);
    }

    private static bool AnyMatch(IReadOnlyList<Glob> globs, string text)
    {
        foreach (var g in globs)
        {
            if (g.IsMatch(text))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Why one rule did or did not apply to a call.</summary>
/// <param name="RuleId">The rule.</param>
/// <param name="Matched">True when the rule applied.</param>
/// <param name="Why">What decided it.</param>
/// <param name="Effect">The rule's effect.</param>
public sealed record RuleTrace(string RuleId, bool Matched, string Why, Effect Effect);

/// <summary>
/// An immutable, validated policy: rules indexed by operation, server and tool. Evaluation is all-match
/// with precedence (deny over ask over shadow over allow): every applicable rule is considered, so the
/// outcome never depends on rule order, and adding an allow rule can never override a deny.
/// </summary>
public sealed class CompiledPolicy
{
    // Resource URIs are unbounded; past this many cached targets per server, look-ups are computed afresh.
    private const int MaxCachedTargets = 4096;

    private readonly CompiledRule[] _rules;
    private readonly Dictionary<string, IReadOnlyList<string>> _agentGroups;
    private readonly ClassEntry[] _classes;
    private readonly ConcurrentDictionary<string, ServerIndex>[] _index;
    private readonly (Limits.LimitRule Limit, CompiledRule Matcher)[] _limits;
    private readonly int _memoSlots;

    internal CompiledPolicy(PolicyDocument document, IReadOnlyList<CompiledRule> rules, string version)
    {
        Document = document;
        _rules = [.. rules];
        Version = version;
        _agentGroups = document.Agents.ToDictionary(a => a.Key, a => a.Value.Groups, StringComparer.Ordinal);
        _classes = [.. document.Classes];
        _limits = [.. document.Limits.Select((l, i) => (l, new CompiledRule(l.Match, null, i)))];
        foreach (var shared in _rules.Where(r => r.Cel is not null).GroupBy(r => r.Cel!.Compiled.Source, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            foreach (var rule in shared)
            {
                rule.MemoSlot = _memoSlots;
            }

            _memoSlots++;
        }

        _index = new ConcurrentDictionary<string, ServerIndex>[5];
        for (var i = 0; i < _index.Length; i++)
        {
            _index[i] = new ConcurrentDictionary<string, ServerIndex>(StringComparer.Ordinal);
        }
    }

    /// <summary>The document compiled.</summary>
    public PolicyDocument Document { get; }

    /// <summary>The compiled <c>data_guard:</c> section; null when the policy has none.</summary>
    public DataGuard.DataGuardPolicy? DataGuard { get; internal init; }

    /// <summary>A digest of the policy's text: every decision names it.</summary>
    public string Version { get; }

    /// <summary>The rules in policy order.</summary>
    public IReadOnlyList<CompiledRule> Rules => _rules;

    /// <summary>The effect when no rule applies.</summary>
    public Effect Default => Document.Default;

    /// <summary>The groups policy gives an agent (besides those of its credential).</summary>
    public IReadOnlyList<string> GroupsOf(string agent) => _agentGroups.TryGetValue(agent, out var g) ? g : [];

    /// <summary>The classes policy assigns to a tool, replacing its annotations; null when policy says nothing.</summary>
    public ToolClasses? ClassesOf(string server, string tool) => Lookup(McpOperation.ToolCall, server, tool).ClassOverride;

    /// <summary>The limits in policy order.</summary>
    public IReadOnlyList<Limits.LimitRule> Limits => Document.Limits;

    /// <summary>The limits that cover a call (empty, without allocating, when none do).</summary>
    public IReadOnlyList<Limits.LimitRule> LimitsFor(CallContext call)
    {
        if (_limits.Length == 0)
        {
            return [];
        }

        var entry = Lookup(call.Operation, call.Server, call.Target);
        if (entry.Limits.Length == 0)
        {
            return [];
        }

        var classes = entry.ClassOverride ?? call.AnnotatedClasses;
        if (entry.LimitsByClasses is { } byClasses)
        {
            // No limit on this target names an agent or group: the answer depends on the classes alone, so it
            // is computed once per class set and the hot path allocates nothing.
            return byClasses[(int)classes & 15] ??= Filter(entry.Limits, call, classes, []);
        }

        return Filter(entry.Limits, call, classes, GroupsOf(call.Agent.Name));
    }

    private static Limits.LimitRule[] Filter((Limits.LimitRule Limit, CompiledRule Matcher)[] limits, CallContext call, ToolClasses classes, IReadOnlyList<string> policyGroups)
    {
        List<Limits.LimitRule>? result = null;
        foreach (var (limit, matcher) in limits)
        {
            if (Applies(matcher, call, classes, policyGroups, out _))
            {
                (result ??= []).Add(limit);
            }
        }

        return result is null ? [] : [.. result];
    }

    /// <summary>The classes that count for a call.</summary>
    public ToolClasses EffectiveClasses(CallContext call) =>
        call.Operation == McpOperation.ToolCall && Lookup(call.Operation, call.Server, call.Target).ClassOverride is { } c ? c : call.AnnotatedClasses;

    /// <summary>Decides a call. Allocation-free when the call is allowed.</summary>
    public Decision Decide(CallContext call)
    {
        var entry = Lookup(call.Operation, call.Server, call.Target);
        var classes = entry.ClassOverride ?? call.AnnotatedClasses;
        var policyGroups = GroupsOf(call.Agent.Name);
        CompiledRule? best = null;
        if (entry.HasConditions)
        {
            PolicyConditions.Prepare(call, classes, policyGroups);
        }

        // The candidates' conditions read the same few arguments: one cache per decision reads each once.
        var cache = entry.HasConditions ? ArgCache.Rent() : null;
        cache?.EnsureMemo(_memoSlots);

        // One evaluation frame for every candidate: the conditions' predicate forms answer true or false without
        // the per-condition set-up; anything else (an error) is evaluated again in full for its message.
        var frame = new Frame { ArgsDictionary = call.Arguments, Context = call, Cache = cache };
        try
        {
            foreach (var rule in entry.Candidates)
            {
                if (!AppliesFast(rule, call.Agent, classes, policyGroups))
                {
                    continue;
                }

                if (rule.Condition is { } condition)
                {
                    var fast = Tri.Other;
                    if (rule.Cel is { } c)
                    {
                        var slot = rule.MemoSlot;
                        if (slot < 0)
                        {
                            fast = c.Compiled.Predicate(ref frame);
                        }
                        else if ((fast = cache!.Memo(slot)) < 0)
                        {
                            fast = c.Compiled.Predicate(ref frame);
                            cache.Remember(slot, fast);
                        }
                    }

                    if (fast == Tri.False)
                    {
                        continue;
                    }

                    var verdict = fast == Tri.True ? ConditionVerdict.True
                        : rule.Cel is { } cel ? cel.Evaluate(call, cache) : condition.Evaluate(call, classes, policyGroups);
                    if (verdict.Error is { } error)
                    {
                        // Errors are not decisions: the call is denied and recorded as an error, naming the rule.
                        return new Decision(Effect.Deny, rule.Id, $"condition of rule {rule.Id} failed: {error}", Version, IsError: true);
                    }

                    if (!verdict.Value)
                    {
                        continue;
                    }
                }

                // No early exit on deny: a later candidate's condition may fail, and a failed condition must make the
                // decision an error whatever the order of the rules (a shortcut here made error-vs-deny order-dependent).
                if (best is null || rule.Entry.Effect > best.Entry.Effect)
                {
                    best = rule;
                }
            }
        }
        finally
        {
            if (cache is not null)
            {
                ArgCache.Return(cache);
            }
        }

        if (best is null)
        {
            return new Decision(Document.Default, "default", Document.Default == Effect.Allow ? null : "no rule allows this call", Version);
        }

        return new Decision(best.Entry.Effect, best.Id, best.Entry.Message ?? best.Entry.Description, Version);
    }

    /// <summary>Decides a call and says, for every rule, whether it applied and why.</summary>
    public (Decision Decision, IReadOnlyList<RuleTrace> Trace) Explain(CallContext call)
    {
        var classes = EffectiveClasses(call);
        var policyGroups = GroupsOf(call.Agent.Name);
        var trace = new List<RuleTrace>(_rules.Length);
        foreach (var rule in _rules)
        {
            string why;
            var matched = false;
            if (!rule.MatchesTarget(call.Operation, call.Server, call.Target))
            {
                why = !rule.Entry.Operations.Contains(call.Operation) ? "method does not match"
                    : rule.Entry.Servers.Count > 0 && !rule.Entry.Servers.Any(g => g.IsMatch(call.Server)) ? $"server '{call.Server}' does not match {string.Join(", ", rule.Entry.Servers)}"
                    : $"'{call.Target}' does not match {string.Join(", ", rule.Entry.Targets)}";
            }
            else if (!Applies(rule, call, classes, policyGroups, out var reason))
            {
                why = reason!;
            }
            else if (rule.Condition is { } condition)
            {
                var verdict = condition.Evaluate(call, classes, policyGroups);
                matched = verdict.Error is not null || verdict.Value;
                why = verdict.Error is { } e ? $"condition failed: {e} (counts as an error)" : verdict.Value ? $"matched; condition '{rule.Entry.When}' is true" : $"condition '{rule.Entry.When}' is false";
            }
            else
            {
                matched = true;
                why = "matched";
            }

            trace.Add(new RuleTrace(rule.Id, matched, why, rule.Entry.Effect));
        }

        return (Decide(call), trace);
    }

    private static bool Applies(CompiledRule rule, CallContext call, ToolClasses classes, IReadOnlyList<string> policyGroups, out string? whyNot)
    {
        var e = rule.Entry;
        if (e.Classes != ToolClasses.None && (e.Classes & classes) == 0)
        {
            whyNot = $"tool classes [{string.Join(", ", ToolClassifier.Names(classes))}] include none of [{string.Join(", ", ToolClassifier.Names(e.Classes))}]";
            return false;
        }

        if (e.AgentNames.Count > 0 && !Contains(e.AgentNames, call.Agent.Name))
        {
            whyNot = $"agent '{call.Agent.Name}' is not {string.Join(", ", e.AgentNames)}";
            return false;
        }

        if (e.Groups.Count > 0 && !HoldsAny(e.Groups, call.Agent.Groups, policyGroups))
        {
            whyNot = $"agent is in none of the groups {string.Join(", ", e.Groups)}";
            return false;
        }

        whyNot = null;
        return true;
    }

    /// <summary><see cref="Applies"/> without the explanation, for decisions.</summary>
    private static bool AppliesFast(CompiledRule rule, AgentIdentity agent, ToolClasses classes, IReadOnlyList<string> policyGroups)
    {
        var wanted = rule.Entry.Classes;
        if (wanted != ToolClasses.None && (wanted & classes) == 0)
        {
            return false;
        }

        var names = rule.AgentNames;
        if (names.Length > 0 && Array.IndexOf(names, agent.Name) < 0)
        {
            return false;
        }

        var groups = rule.Groups;
        if (groups.Length == 0)
        {
            return true;
        }

        foreach (var g in groups)
        {
            if (Contains(agent.Groups, g) || Contains(policyGroups, g))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Contains(IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (string.Equals(list[i], value, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static bool HoldsAny(IReadOnlyList<string> wanted, IReadOnlyList<string> a, IReadOnlyList<string> b)
    {
        for (var i = 0; i < wanted.Count; i++)
        {
            if (Contains(a, wanted[i]) || Contains(b, wanted[i]))
            {
                return true;
            }
        }

        return false;
    }

    private TargetEntry Lookup(McpOperation operation, string server, string target)
    {
        var byServer = _index[(int)operation];
        if (!byServer.TryGetValue(server, out var serverIndex))
        {
            serverIndex = byServer.GetOrAdd(server, static (s, self) => new ServerIndex(self, s), this);
        }

        return serverIndex.Get(operation, target);
    }

    private TargetEntry Build(McpOperation operation, string server, string target)
    {
        var candidates = new List<CompiledRule>();
        foreach (var rule in _rules)
        {
            if (rule.MatchesTarget(operation, server, target))
            {
                candidates.Add(rule);
            }
        }

        ToolClasses? classes = null;
        if (operation == McpOperation.ToolCall)
        {
            // The last assignment that matches wins, so a specific entry can follow a broad one.
            foreach (var c in _classes)
            {
                if (c.Server == server && c.Tool.IsMatch(target))
                {
                    classes = c.Classes;
                }
            }
        }

        var limits = _limits.Where(l => l.Matcher.MatchesTarget(operation, server, target)).ToArray();
        var classOnly = limits.All(l => l.Matcher.Entry.AgentNames.Count == 0 && l.Matcher.Entry.Groups.Count == 0);
        return new TargetEntry([.. candidates], classes, limits, classOnly && limits.Length > 0 ? new Limits.LimitRule[]?[16] : null)
        {
            HasConditions = candidates.Exists(c => c.Condition is not null),
        };
    }

    private sealed record TargetEntry(
        CompiledRule[] Candidates,
        ToolClasses? ClassOverride,
        (Limits.LimitRule Limit, CompiledRule Matcher)[] Limits,
        Limits.LimitRule[]?[]? LimitsByClasses)
    {
        public bool HasConditions { get; init; }
    }

    private sealed class ServerIndex(CompiledPolicy owner, string server)
    {
        private readonly ConcurrentDictionary<string, TargetEntry> _targets = new(StringComparer.Ordinal);

        public TargetEntry Get(McpOperation operation, string target)
        {
            if (_targets.TryGetValue(target, out var entry))
            {
                return entry;
            }

            entry = owner.Build(operation, server, target);
            if (_targets.Count < MaxCachedTargets)
            {
                _targets.TryAdd(target, entry);
            }

            return entry;
        }
    }
}
