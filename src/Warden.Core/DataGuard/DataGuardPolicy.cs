using Warden.Core.Policy;

namespace Warden.Core.DataGuard;

/// <summary>What the data guard does with a finding. Several may combine (redact and label).</summary>
[Flags]
public enum GuardAction
{
    /// <summary>Nothing: the finding is recorded only.</summary>
    None = 0,

    /// <summary>Label the agent (results) so rules can hold its outbound calls.</summary>
    Label = 1,

    /// <summary>Replace the value (in arguments before they leave, in results before the agent sees them).</summary>
    Redact = 2,

    /// <summary>Hold the call for a human (arguments).</summary>
    Ask = 4,

    /// <summary>Refuse the call (arguments) or withhold the result (results).</summary>
    Block = 8,
}

/// <summary>Which way data flows.</summary>
public enum GuardDirection
{
    /// <summary>A call's arguments, on their way to an upstream.</summary>
    Arguments,

    /// <summary>A result, on its way to the agent.</summary>
    Results,
}

/// <summary>Labels that reading from a server, tool or resource gives the agent.</summary>
public sealed record SourceLabels(RuleEntry Match, IReadOnlyList<string> Labels, SourceSpan At);

/// <summary>The <c>data_guard:</c> section of a policy, as written.</summary>
public sealed class DataGuardSettings
{
    /// <summary>How long a label from a read stays on the agent.</summary>
    public TimeSpan LabelTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>True when labels stay in the session that read the data (opt-in); by default they follow the agent into every session.</summary>
    public bool PerSessionLabels { get; set; }

    /// <summary>How many encodings deep to decode.</summary>
    public int MaxDecodeDepth { get; set; } = 3;

    /// <summary>How many characters of arguments are scanned before the rest is unscannable.</summary>
    public long MaxArgumentChars { get; set; } = 1 << 20;

    /// <summary>How many characters of a result are scanned before the rest is unscannable.</summary>
    public long MaxResultChars { get; set; } = 16 << 20;

    /// <summary>Custom patterns.</summary>
    public List<CustomPattern> Patterns { get; } = [];

    /// <summary>Keyword lists.</summary>
    public List<KeywordList> Keywords { get; } = [];

    /// <summary>Actions for arguments, by kind, category (<c>secret</c>, <c>personal</c>, ...) or <c>*</c>.</summary>
    public Dictionary<string, GuardAction> OnArguments { get; } = new(StringComparer.Ordinal);

    /// <summary>Actions for results, by kind, category or <c>*</c>.</summary>
    public Dictionary<string, GuardAction> OnResults { get; } = new(StringComparer.Ordinal);

    /// <summary>Servers, tools and resources whose results label the agent.</summary>
    public List<SourceLabels> Sources { get; } = [];

    /// <summary>Where the section starts.</summary>
    public SourceSpan At { get; set; }
}

/// <summary>
/// A compiled <c>data_guard:</c> section: the scanner built once, and the action for each finding in each
/// direction. Defaults when the policy does not say: in arguments, secrets, custom kinds, fingerprints and
/// unscannable data are blocked and personal data is recorded; in results, secrets are redacted, personal and
/// custom findings label the agent, and an unscannable result is withheld.
/// </summary>
public sealed class DataGuardPolicy
{
    private static readonly Dictionary<string, GuardAction> ArgumentDefaults = new(StringComparer.Ordinal)
    {
        ["secret"] = GuardAction.Block,
        ["custom"] = GuardAction.Block,
        ["fingerprint"] = GuardAction.Block,
        ["limit"] = GuardAction.Block,
        ["personal"] = GuardAction.None,
    };

    private static readonly Dictionary<string, GuardAction> ResultDefaults = new(StringComparer.Ordinal)
    {
        ["secret"] = GuardAction.Redact,
        ["custom"] = GuardAction.Label,
        ["personal"] = GuardAction.Label,
        ["fingerprint"] = GuardAction.None,
        ["limit"] = GuardAction.Block,
    };

    /// <summary>Compiles settings. Throws <see cref="ArgumentException"/> when a custom pattern does not compile.</summary>
    public DataGuardPolicy(DataGuardSettings settings)
    {
        Settings = settings;
        Scanner = new DataScanner(new DataScannerOptions
        {
            MaxDecodeDepth = settings.MaxDecodeDepth,
            MaxArgumentChars = settings.MaxArgumentChars,
            MaxResultChars = settings.MaxResultChars,
            Patterns = settings.Patterns,
            Keywords = settings.Keywords,
        });
    }

    /// <summary>The settings as written.</summary>
    public DataGuardSettings Settings { get; }

    /// <summary>The scanner.</summary>
    public DataScanner Scanner { get; }

    /// <summary>The action for a finding in a direction: its kind, else its category, else <c>*</c>, else the default.</summary>
    public GuardAction ActionFor(Finding finding, GuardDirection direction)
    {
        var table = direction == GuardDirection.Arguments ? Settings.OnArguments : Settings.OnResults;
        var category = Finding.CategoryName(finding.Category);
        if (table.TryGetValue(finding.Kind, out var a) || table.TryGetValue(category, out a) || table.TryGetValue("*", out a))
        {
            return a;
        }

        var defaults = direction == GuardDirection.Arguments ? ArgumentDefaults : ResultDefaults;
        return defaults.TryGetValue(category, out a) ? a : GuardAction.None;
    }

    /// <summary>The labels reading this target gives, from <c>sources:</c>.</summary>
    public IReadOnlyList<string> SourceLabelsFor(McpOperation operation, string server, string target)
    {
        List<string>? labels = null;
        foreach (var s in Settings.Sources)
        {
            var m = s.Match;
            if (m.Operations.Count > 0 && !m.Operations.Contains(operation))
            {
                continue;
            }

            if (m.Servers.Count > 0 && !m.Servers.Any(g => g.IsMatch(server)))
            {
                continue;
            }

            if (m.Targets.Count > 0 && !m.Targets.Any(g => g.IsMatch(target)))
            {
                continue;
            }

            (labels ??= []).AddRange(s.Labels);
        }

        return labels is null ? [] : labels.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Parses an action list (<c>block</c>, <c>redact</c>, <c>ask</c>, <c>label</c>, <c>none</c>).</summary>
    public static GuardAction? ParseAction(string s) => s switch
    {
        "block" or "deny" => GuardAction.Block,
        "redact" => GuardAction.Redact,
        "ask" => GuardAction.Ask,
        "label" => GuardAction.Label,
        "none" or "allow" or "record" => GuardAction.None,
        _ => null,
    };

    /// <summary>The policy names of an action set.</summary>
    public static string Names(GuardAction a) => a == GuardAction.None ? "none" : string.Join("+",
        new[] { (GuardAction.Block, "block"), (GuardAction.Ask, "ask"), (GuardAction.Redact, "redact"), (GuardAction.Label, "label") }
            .Where(x => (a & x.Item1) != 0).Select(x => x.Item2));
}
