using Warden.Core.DataGuard;
using Warden.Core.Text;
using YamlDotNet.RepresentationModel;

namespace Warden.Core.Policy;

/// <summary>The <c>data_guard:</c> section (docs/data-guard.md).</summary>
public sealed partial class PolicyParser
{
    private static readonly string[] GuardFields =
        ["label_ttl", "label_scope", "max_decode_depth", "max_argument_chars", "max_result_chars", "sources", "patterns", "keywords", "actions"];

    private static readonly string[] SourceFields = ["server", "tool", "resource", "prompt", "labels"];

    private void ReadDataGuard(YamlReader r, string file, YamlNode node)
    {
        if (r.Mapping(node, "data_guard", GuardFields) is not { } m)
        {
            return;
        }

        if (_doc.DataGuard is { } first)
        {
            r.Error(node, $"data_guard is set again (first at {first.At})", "write the data_guard section in one file only");
            return;
        }

        var g = new DataGuardSettings { At = At(file, node) };
        _doc.DataGuard = g;
        if (r.Duration(YamlReader.Get(m, "label_ttl"), "label_ttl") is { } ttl)
        {
            g.LabelTtl = ttl;
        }

        var scopeNode = YamlReader.Get(m, "label_scope");
        switch (r.String(scopeNode, "label_scope"))
        {
            case null or "agent":
                break;
            case "session":
                g.PerSessionLabels = true;
                break;
            case var other:
                r.Error(scopeNode, $"label_scope must be agent or session, not '{other}'", "agent (default) keeps labels across the agent's sessions");
                break;
        }

        if (r.Integer(YamlReader.Get(m, "max_decode_depth"), "max_decode_depth") is { } depth)
        {
            if (depth is < 0 or > 8)
            {
                r.Error(YamlReader.Get(m, "max_decode_depth"), "max_decode_depth must be between 0 and 8");
            }
            else
            {
                g.MaxDecodeDepth = (int)depth;
            }
        }

        if (r.Integer(YamlReader.Get(m, "max_argument_chars"), "max_argument_chars") is { } maxArgs and > 0)
        {
            g.MaxArgumentChars = maxArgs;
        }

        if (r.Integer(YamlReader.Get(m, "max_result_chars"), "max_result_chars") is { } maxResults and > 0)
        {
            g.MaxResultChars = maxResults;
        }

        if (YamlReader.Get(m, "sources") is YamlSequenceNode sources)
        {
            foreach (var s in sources.Children)
            {
                if (r.Mapping(s, "a data_guard source", SourceFields) is not { } sm)
                {
                    continue;
                }

                var labels = r.StringList(YamlReader.Get(sm, "labels"), "labels");
                if (labels.Count == 0)
                {
                    r.Error(s, "a data_guard source needs labels", "for example labels: [confidential]");
                }

                var ops = new List<McpOperation>();
                if (YamlReader.Get(sm, "tool") is not null || (YamlReader.Get(sm, "resource") is null && YamlReader.Get(sm, "prompt") is null))
                {
                    ops.Add(McpOperation.ToolCall);
                }

                if (YamlReader.Get(sm, "resource") is not null || (YamlReader.Get(sm, "tool") is null && YamlReader.Get(sm, "prompt") is null))
                {
                    ops.Add(McpOperation.ResourceRead);
                }

                if (YamlReader.Get(sm, "prompt") is not null || (YamlReader.Get(sm, "tool") is null && YamlReader.Get(sm, "resource") is null))
                {
                    ops.Add(McpOperation.PromptGet);
                }

                var match = new RuleEntry
                {
                    Id = "data_guard.source",
                    Servers = r.StringList(YamlReader.Get(sm, "server"), "server").Select(x => new Glob(x)).ToList(),
                    Targets = r.StringList(YamlReader.Get(sm, "tool"), "tool")
                        .Concat(r.StringList(YamlReader.Get(sm, "resource"), "resource"))
                        .Concat(r.StringList(YamlReader.Get(sm, "prompt"), "prompt"))
                        .Select(x => new Glob(x)).ToList(),
                    Operations = ops,
                    At = At(file, s),
                };
                g.Sources.Add(new SourceLabels(match, labels, At(file, s)));
            }
        }

        var kinds = new HashSet<string>(FindingKinds.Secrets.Concat(FindingKinds.Personal).Append(FindingKinds.Fingerprint).Append(FindingKinds.Unscannable), StringComparer.Ordinal);
        if (YamlReader.Get(m, "patterns") is YamlSequenceNode patterns)
        {
            foreach (var p in patterns.Children)
            {
                if (r.Mapping(p, "a data_guard pattern", "kind", "regex", "label") is not { } pm)
                {
                    continue;
                }

                var kind = CustomKind(r, p, pm, kinds);
                var regex = r.String(YamlReader.Get(pm, "regex"), "regex");
                if (kind is null || string.IsNullOrEmpty(regex))
                {
                    r.Error(p, "a data_guard pattern needs kind and regex");
                    continue;
                }

                try
                {
                    _ = new System.Text.RegularExpressions.Regex(regex, System.Text.RegularExpressions.RegexOptions.NonBacktracking);
                }
                catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
                {
                    // NonBacktracking keeps matching linear in the input; it refuses backreferences and lookarounds.
                    r.Error(YamlReader.Get(pm, "regex"), $"pattern '{kind}': {ex.Message}", "patterns run with the linear-time engine: no backreferences, lookarounds or atomic groups");
                    continue;
                }

                g.Patterns.Add(new CustomPattern(kind, regex, r.String(YamlReader.Get(pm, "label"), "label")));
            }
        }

        if (YamlReader.Get(m, "keywords") is YamlSequenceNode keywords)
        {
            foreach (var k in keywords.Children)
            {
                if (r.Mapping(k, "a data_guard keyword list", "kind", "words", "label") is not { } km)
                {
                    continue;
                }

                var kind = CustomKind(r, k, km, kinds);
                var words = r.StringList(YamlReader.Get(km, "words"), "words").Where(w => w.Length > 0).ToList();
                if (kind is null || words.Count == 0)
                {
                    r.Error(k, "a data_guard keyword list needs kind and words");
                    continue;
                }

                g.Keywords.Add(new KeywordList(kind, words, r.String(YamlReader.Get(km, "label"), "label")));
            }
        }

        if (r.Mapping(YamlReader.Get(m, "actions"), "data_guard.actions", "arguments", "results") is { } actions)
        {
            ReadActions(r, YamlReader.Get(actions, "arguments"), "arguments", g.OnArguments, kinds);
            ReadActions(r, YamlReader.Get(actions, "results"), "results", g.OnResults, kinds);
        }
    }

    private static string? CustomKind(YamlReader r, YamlNode at, YamlMappingNode m, HashSet<string> kinds)
    {
        var kind = r.String(YamlReader.Get(m, "kind"), "kind");
        if (kind is null)
        {
            return null;
        }

        if (!kinds.Add(kind) || kind is "secret" or "personal" or "custom" or "limit" or "*")
        {
            r.Error(at, $"kind '{kind}' is already defined or built in", "give custom patterns and keyword lists their own kind names");
            return null;
        }

        return kind;
    }

    private static void ReadActions(YamlReader r, YamlNode? node, string direction, Dictionary<string, GuardAction> into, HashSet<string> kinds)
    {
        if (r.Mapping(node, $"data_guard.actions.{direction}") is not { } m)
        {
            return;
        }

        string[] groups = ["secret", "personal", "custom", "fingerprint", "limit", "*"];
        foreach (var (k, v) in m.Children)
        {
            var key = r.String(k, "finding kind") ?? "";
            if (!groups.Contains(key) && !kinds.Contains(key))
            {
                r.Error(k, $"unknown finding kind '{key}'", YamlReader.Closest(key, kinds.Concat(groups)) is { } close ? $"did you mean '{close}'?" : "kinds are the built-in detectors, custom kinds, or secret, personal, custom, fingerprint, limit, *");
                continue;
            }

            var names = v is YamlSequenceNode ? r.StringList(v, key) : [r.String(v, key) ?? ""];
            var action = GuardAction.None;
            foreach (var name in names)
            {
                if (DataGuardPolicy.ParseAction(name) is { } a)
                {
                    action |= a;
                }
                else
                {
                    r.Error(v, $"unknown data_guard action '{name}'", "actions are block, redact, ask, label, none");
                }
            }

            if (direction == "results" && (action & GuardAction.Ask) != 0)
            {
                r.Error(v, "ask applies to arguments: a result has already happened", "use block (withhold it), redact or label");
            }

            if (direction == "arguments" && (action & GuardAction.Label) != 0)
            {
                r.Warning(v, "label applies to results (what the agent reads); in arguments it has no effect");
            }

            into[key] = action;
        }
    }
}
