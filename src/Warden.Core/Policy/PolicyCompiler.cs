using System.Security.Cryptography;
using System.Text;
using Warden.Core.Text;

namespace Warden.Core.Policy;

/// <summary>Compiles a rule condition; reports problems into the list and returns null on failure.</summary>
/// <param name="source">The condition's text.</param>
/// <param name="at">Where it starts, for diagnostics.</param>
/// <param name="lists">The policy's named lists.</param>
/// <param name="diagnostics">Where to report problems.</param>
public delegate IRuleCondition? ConditionFactory(string source, SourceSpan at, IReadOnlyDictionary<string, IReadOnlyList<string>> lists, List<SourceDiagnostic> diagnostics);

/// <summary>What the compiler checks references against. Unknown parts are not checked.</summary>
public sealed class PolicyReferences
{
    /// <summary>Configured upstream names; null when unknown (checked offline without a config).</summary>
    public IReadOnlyCollection<string>? Servers { get; init; }

    /// <summary>Live tool names by server, when a gateway runs.</summary>
    public IReadOnlyDictionary<string, IReadOnlyCollection<string>>? Tools { get; init; }
}

/// <summary>Turns policy files into a <see cref="CompiledPolicy"/>, or into every problem found.</summary>
public static class PolicyCompiler
{
    /// <summary>Parses and compiles policy files.</summary>
    /// <param name="files">(path, text) in load order.</param>
    /// <param name="readListFile">Reads list files named by the policy.</param>
    /// <param name="conditions">Compiles <c>when</c> conditions.</param>
    /// <param name="references">What to check server, tool and group references against.</param>
    public static PolicyCompileResult Compile(
        IReadOnlyList<(string Path, string Text)> files,
        Func<string, string, string?> readListFile,
        ConditionFactory conditions,
        PolicyReferences? references = null)
    {
        var parser = new PolicyParser(readListFile);
        foreach (var (path, text) in files)
        {
            parser.Add(path, text);
        }

        var diagnostics = new List<SourceDiagnostic>(parser.Diagnostics);
        if (files.Count == 0)
        {
            diagnostics.Add(new SourceDiagnostic("(policy)", 1, 1, "no policy files found", "a policy folder must hold at least one .yaml file"));
        }

        var doc = parser.Document;
        var lists = doc.Lists.ToDictionary(l => l.Key, l => l.Value.Values, StringComparer.Ordinal);
        var rules = new List<CompiledRule>();
        var knownGroups = doc.Agents.Values.SelectMany(a => a.Groups).ToHashSet(StringComparer.Ordinal);
        foreach (var entry in doc.Rules)
        {
            IRuleCondition? condition = null;
            if (entry.When is { } when)
            {
                condition = conditions(when, entry.WhenAt, lists, diagnostics);
            }

            foreach (var g in entry.Groups.Where(g => !knownGroups.Contains(g)))
            {
                diagnostics.Add(new SourceDiagnostic(entry.At.File, entry.At.Line, entry.At.Column, $"rule '{entry.Id}' names group '{g}', which no agent in the policy has", "add the group to an agent under agents:, or fix the name", IsWarning: true));
            }

            CheckReferences(entry, references, diagnostics);
            rules.Add(new CompiledRule(entry, condition, rules.Count));
        }

        foreach (var c in doc.Classes)
        {
            if (references?.Servers is { } servers && !servers.Contains(c.Server))
            {
                diagnostics.Add(new SourceDiagnostic(c.At.File, c.At.Line, c.At.Column, $"classes: unknown server '{c.Server}'", Hint(c.Server, servers)));
            }
        }

        CheckShadowing(rules, diagnostics);
        var guard = CompileDataGuard(doc, references, diagnostics);
        if (diagnostics.Exists(d => !d.IsWarning))
        {
            return new PolicyCompileResult(null, diagnostics);
        }

        return new PolicyCompileResult(new CompiledPolicy(doc, rules, Digest(files)) { DataGuard = guard }, diagnostics);
    }

    private static DataGuard.DataGuardPolicy? CompileDataGuard(PolicyDocument doc, PolicyReferences? references, List<SourceDiagnostic> diagnostics)
    {
        if (doc.DataGuard is not { } settings)
        {
            return null;
        }

        if (references?.Servers is { } servers)
        {
            foreach (var source in settings.Sources)
            {
                foreach (var s in source.Match.Servers.Where(s => s.IsLiteral && !servers.Contains(s.Pattern)))
                {
                    diagnostics.Add(new SourceDiagnostic(source.At.File, source.At.Line, source.At.Column, $"data_guard source names unknown server '{s.Pattern}'", Hint(s.Pattern, servers)));
                }
            }
        }

        try
        {
            return new DataGuard.DataGuardPolicy(settings);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
        {
            diagnostics.Add(new SourceDiagnostic(settings.At.File, settings.At.Line, settings.At.Column, "data_guard: " + ex.Message));
            return null;
        }
    }

    private static string? Hint(string name, IEnumerable<string> known) =>
        YamlReader.Closest(name, known) is { } close ? $"did you mean '{close}'?" : $"known: {string.Join(", ", known)}";

    private static void CheckReferences(RuleEntry entry, PolicyReferences? references, List<SourceDiagnostic> diagnostics)
    {
        if (references?.Servers is not { } servers)
        {
            return;
        }

        foreach (var s in entry.Servers.Where(s => s.IsLiteral && !servers.Contains(s.Pattern)))
        {
            diagnostics.Add(new SourceDiagnostic(entry.At.File, entry.At.Line, entry.At.Column, $"rule '{entry.Id}' names unknown server '{s.Pattern}'", Hint(s.Pattern, servers)));
        }

        if (references.Tools is not { } tools || !entry.Operations.Contains(McpOperation.ToolCall))
        {
            return;
        }

        foreach (var t in entry.Targets)
        {
            var inServers = entry.Servers.Count == 0 ? tools.Keys : entry.Servers.Where(s => s.IsLiteral).Select(s => s.Pattern).Where(tools.ContainsKey);
            var candidates = inServers.SelectMany(s => tools[s]).ToList();
            if (candidates.Count > 0 && !candidates.Any(c => t.IsMatch(c)))
            {
                diagnostics.Add(new SourceDiagnostic(entry.At.File, entry.At.Line, entry.At.Column, $"rule '{entry.Id}': tool pattern '{t.Pattern}' matches no live tool", Hint(t.Pattern, candidates)));
            }
        }
    }

    /// <summary>
    /// A rule can never change a decision when an earlier unconditional rule covers everything it matches
    /// with an effect at least as strong: all-match evaluation would always let the earlier one win.
    /// </summary>
    private static void CheckShadowing(List<CompiledRule> rules, List<SourceDiagnostic> diagnostics)
    {
        for (var j = 0; j < rules.Count; j++)
        {
            var b = rules[j].Entry;
            for (var i = 0; i < j; i++)
            {
                var a = rules[i].Entry;
                if (a.When is null && a.Effect >= b.Effect && Covers(a, b))
                {
                    diagnostics.Add(new SourceDiagnostic(b.At.File, b.At.Line, b.At.Column,
                        $"rule '{b.Id}' is shadowed by rule '{a.Id}' ({a.At}): it matches nothing '{a.Id}' does not already decide as {EffectNames.Name(a.Effect)}",
                        "remove it, narrow the earlier rule, or add a condition to it", IsWarning: true));
                    break;
                }
            }
        }
    }

    private static bool Covers(RuleEntry a, RuleEntry b) =>
        b.Operations.All(a.Operations.Contains)
        && GlobsCover(a.Servers, b.Servers)
        && GlobsCover(a.Targets, b.Targets)
        && (a.Classes == ToolClasses.None || (b.Classes != ToolClasses.None && (b.Classes & ~a.Classes) == 0))
        && (a.AgentNames.Count == 0 || (b.AgentNames.Count > 0 && b.AgentNames.All(a.AgentNames.Contains)))
        && (a.Groups.Count == 0 || (b.Groups.Count > 0 && b.Groups.All(a.Groups.Contains)));

    private static bool GlobsCover(IReadOnlyList<Glob> a, IReadOnlyList<Glob> b) =>
        a.Count == 0 || (b.Count > 0 && b.All(g => a.Any(g.IsCoveredBy)));

    private static string Digest(IReadOnlyList<(string Path, string Text)> files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (path, text) in files)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(Path.GetFileName(path)));
            sha.AppendData([0]);
            sha.AppendData(Encoding.UTF8.GetBytes(text));
            sha.AppendData([0]);
        }

        return Convert.ToHexStringLower(sha.GetHashAndReset())[..12];
    }
}

/// <summary>The outcome of compiling a policy.</summary>
/// <param name="Policy">The policy, or null when there were errors.</param>
/// <param name="Diagnostics">Every problem and warning.</param>
public sealed record PolicyCompileResult(CompiledPolicy? Policy, IReadOnlyList<SourceDiagnostic> Diagnostics)
{
    /// <summary>True when the policy compiled.</summary>
    public bool Success => Policy is not null;
}
