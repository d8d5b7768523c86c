using Warden.Core.Text;
using YamlDotNet.RepresentationModel;

namespace Warden.Core.Policy;

/// <summary>
/// Parses policy YAML into a <see cref="PolicyDocument"/>, collecting every problem with file, line and column.
/// Performs no I/O: files (including list files) are handed in by the caller.
/// </summary>
public sealed class PolicyParser
{
    private static readonly string[] TopFields = ["version", "default", "agents", "lists", "classes", "rules", "limits"];
    private static readonly string[] RuleFields = ["id", "description", "match", "when", "effect", "message", "approvers", "timeout", "mode", "two_person"];
    private static readonly string[] MatchFields = ["server", "tool", "class", "agent", "group", "method", "resource", "prompt"];
    private static readonly string[] LimitFields = ["id", "description", "match", "rate", "burst", "concurrency", "budget", "breaker", "per", "on_exceed"];

    private readonly Func<string, string, string?> _readListFile;
    private readonly List<SourceDiagnostic> _diagnostics = [];
    private readonly PolicyDocument _doc = new();
    private bool _defaultSet;

    /// <summary>Creates a parser.</summary>
    /// <param name="readListFile">Reads a list file named in a policy file (policy file, relative path) or returns null when missing.</param>
    public PolicyParser(Func<string, string, string?> readListFile) => _readListFile = readListFile;

    /// <summary>Every problem found so far.</summary>
    public IReadOnlyList<SourceDiagnostic> Diagnostics => _diagnostics;

    /// <summary>The document built so far.</summary>
    public PolicyDocument Document => _doc;

    /// <summary>Adds one file's contents to the document.</summary>
    public void Add(string file, string text)
    {
        _doc.Files.Add(file);
        var r = new YamlReader(file);
        var root = r.Parse(text);
        if (root is YamlScalarNode { Value: null or "" })
        {
            root = null;
        }

        var map = r.Mapping(root, "a policy file", TopFields);
        if (map is not null)
        {
            Read(r, file, map);
        }

        _diagnostics.AddRange(r.Diagnostics);
    }

    private static SourceSpan At(string file, YamlNode? node) => new(file, YamlReader.Line(node), YamlReader.Column(node));

    private void Read(YamlReader r, string file, YamlMappingNode map)
    {
        if (YamlReader.Get(map, "version") is { } v && r.Integer(v, "version") is { } version && version != 1)
        {
            r.Error(v, $"unsupported policy version {version}", "this Warden reads version: 1");
        }

        if (YamlReader.Get(map, "default") is { } d)
        {
            var s = r.String(d, "default");
            if (EffectNames.Parse(s) is { } e and (Effect.Allow or Effect.Deny or Effect.Ask or Effect.Shadow))
            {
                if (_defaultSet)
                {
                    r.Error(d, $"default is set again (first at {_doc.DefaultAt})", "set default in one file only");
                }

                _doc.Default = e;
                _doc.DefaultAt = At(file, d);
                _defaultSet = true;
            }
            else
            {
                r.Error(d, $"default must be allow, deny, ask or shadow, not '{s}'");
            }
        }

        if (r.Mapping(YamlReader.Get(map, "agents"), "agents") is { } agents)
        {
            foreach (var (k, val) in agents.Children)
            {
                var name = r.String(k, "agent name") ?? "";
                var entry = r.Mapping(val, $"agents.{name}", "groups", "trust_client_confirmation");
                var groups = r.StringList(YamlReader.Get(entry, "groups"), $"agents.{name}.groups");
                var trust = r.Bool(YamlReader.Get(entry, "trust_client_confirmation"), $"agents.{name}.trust_client_confirmation") ?? false;
                if (!_doc.Agents.TryAdd(name, new AgentEntry(name, groups, At(file, k), trust)))
                {
                    r.Error(k, $"agent '{name}' is listed twice (first at {_doc.Agents[name].At})");
                }
            }
        }

        if (r.Mapping(YamlReader.Get(map, "lists"), "lists") is { } lists)
        {
            foreach (var (k, val) in lists.Children)
            {
                var name = r.String(k, "list name") ?? "";
                List<string> values;
                if (val is YamlMappingNode lm)
                {
                    r.Mapping(lm, $"lists.{name}", "file");
                    var path = r.String(YamlReader.Get(lm, "file"), $"lists.{name}.file");
                    values = [];
                    if (path is null)
                    {
                        r.Error(val, $"list '{name}' needs values or file: PATH");
                    }
                    else if (_readListFile(file, path) is { } content)
                    {
                        values.AddRange(content.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
                    }
                    else
                    {
                        r.Error(YamlReader.Get(lm, "file"), $"list file '{path}' not found", "paths are relative to the policy file");
                    }
                }
                else
                {
                    values = r.StringList(val, $"lists.{name}");
                }

                if (!_doc.Lists.TryAdd(name, new ListEntry(name, values, At(file, k))))
                {
                    r.Error(k, $"list '{name}' is defined twice (first at {_doc.Lists[name].At})");
                }
            }
        }

        if (r.Mapping(YamlReader.Get(map, "classes"), "classes") is { } classes)
        {
            foreach (var (sk, sv) in classes.Children)
            {
                var server = r.String(sk, "server name") ?? "";
                if (r.Mapping(sv, $"classes.{server}") is not { } tools)
                {
                    continue;
                }

                foreach (var (tk, tv) in tools.Children)
                {
                    var tool = r.String(tk, "tool glob") ?? "";
                    var set = ToolClasses.None;
                    foreach (var c in r.StringList(tv, $"classes.{server}.{tool}"))
                    {
                        if (ToolClassifier.Parse(c) is { } cls)
                        {
                            set |= cls;
                        }
                        else
                        {
                            r.Error(tv, $"unknown class '{c}'", "classes are read_only, mutating, destructive, outbound");
                        }
                    }

                    if ((set & ToolClasses.ReadOnly) != 0 && (set & (ToolClasses.Mutating | ToolClasses.Destructive)) != 0)
                    {
                        r.Error(tv, $"classes.{server}.{tool}: read_only cannot be combined with mutating or destructive");
                    }

                    _doc.Classes.Add(new ClassEntry(server, new Glob(tool), set, At(file, tk)));
                }
            }
        }

        if (YamlReader.Get(map, "rules") is { } rulesNode)
        {
            if (rulesNode is YamlSequenceNode rules)
            {
                foreach (var node in rules.Children)
                {
                    if (ReadRule(r, file, node) is { } rule)
                    {
                        var dup = _doc.Rules.Find(x => x.Id == rule.Id);
                        if (dup is not null)
                        {
                            r.Error(node, $"rule id '{rule.Id}' is used twice (first at {dup.At})", "rule ids name decisions in the audit, so they must be unique");
                        }

                        _doc.Rules.Add(rule);
                    }
                }
            }
            else if (rulesNode is not YamlScalarNode { Value: null or "" })
            {
                r.Error(rulesNode, "rules must be a list");
            }
        }

        if (YamlReader.Get(map, "limits") is YamlSequenceNode limits)
        {
            foreach (var node in limits.Children)
            {
                if (ReadLimit(r, file, node) is { } limit)
                {
                    if (_doc.Limits.Find(l => l.Id == limit.Id) is { } dup)
                    {
                        r.Error(node, $"limit id '{limit.Id}' is used twice (first at {dup.At})");
                    }

                    _doc.Limits.Add(limit);
                }
            }
        }
        else if (YamlReader.Get(map, "limits") is { } badLimits && badLimits is not YamlScalarNode { Value: null or "" })
        {
            r.Error(badLimits, "limits must be a list");
        }
    }

    private Limits.LimitRule? ReadLimit(YamlReader r, string file, YamlNode node)
    {
        if (r.Mapping(node, "a limit", LimitFields) is not { } m)
        {
            return null;
        }

        var id = r.String(YamlReader.Get(m, "id"), "limit id");
        if (string.IsNullOrWhiteSpace(id))
        {
            r.Error(node, "a limit needs an id", "for example id: delete-velocity");
            return null;
        }

        var kinds = new (string Field, Limits.LimitKind Kind)[] { ("rate", Limits.LimitKind.Rate), ("budget", Limits.LimitKind.Budget), ("concurrency", Limits.LimitKind.Concurrency), ("breaker", Limits.LimitKind.Breaker) }
            .Where(k => YamlReader.Get(m, k.Field) is not null).ToList();
        if (kinds.Count != 1)
        {
            r.Error(node, $"limit '{id}' needs exactly one of rate, budget, concurrency or breaker", "for example rate: 10 per minute, budget: 50 per day, concurrency: 4, breaker: 10 in 60s");
            return null;
        }

        var (field, kind) = kinds[0];
        var valueNode = YamlReader.Get(m, field);
        int count;
        var window = TimeSpan.Zero;
        Limits.LimitPer? writtenPer = null;
        if (kind == Limits.LimitKind.Concurrency)
        {
            count = (int)(r.Integer(valueNode, "concurrency") ?? 0);
            if (count <= 0)
            {
                r.Error(valueNode, $"limit '{id}': concurrency must be a positive whole number");
                return null;
            }
        }
        else
        {
            var text = r.String(valueNode, field) ?? "";
            if (!Limits.LimitRule.TryParseAmount(text, out count, out window, out writtenPer))
            {
                r.Error(valueNode, $"limit '{id}': cannot read {field} '{text}'", "write N per second|minute|hour|day, N/min, or N in 60s");
                return null;
            }
        }

        var perNode = YamlReader.Get(m, "per");
        var perText = r.String(perNode, "per");
        Limits.LimitPer per = perText switch
        {
            null => writtenPer ?? Limits.LimitPer.Agent,
            "agent" => Limits.LimitPer.Agent,
            "session" => Limits.LimitPer.Session,
            "global" => Limits.LimitPer.Global,
            _ => Bad(perNode, $"limit '{id}': per must be agent, session or global, not '{perText}'", Limits.LimitPer.Agent),
        };
        var exceedNode = YamlReader.Get(m, "on_exceed");
        var exceedText = r.String(exceedNode, "on_exceed");
        Limits.ExceedAction onExceed = exceedText switch
        {
            null => kind == Limits.LimitKind.Breaker ? Limits.ExceedAction.PauseAgent : Limits.ExceedAction.Deny,
            "deny" => Limits.ExceedAction.Deny,
            "ask" => Limits.ExceedAction.Ask,
            "pause_agent" or "pause" => Limits.ExceedAction.PauseAgent,
            _ => Bad(exceedNode, $"limit '{id}': on_exceed must be deny, ask or pause_agent, not '{exceedText}'", Limits.ExceedAction.Deny),
        };
        var burst = (int)(r.Integer(YamlReader.Get(m, "burst"), "burst") ?? 0);
        if (burst != 0 && kind != Limits.LimitKind.Rate)
        {
            r.Warning(YamlReader.Get(m, "burst"), $"limit '{id}': burst applies only to rate limits");
        }

        return new Limits.LimitRule
        {
            Id = id,
            Match = ReadMatch(r, file, node, id, m),
            Kind = kind,
            Count = count,
            Window = window,
            Burst = burst,
            Per = per,
            OnExceed = onExceed,
            At = At(file, node),
        };

        T Bad<T>(YamlNode? at, string message, T fallback)
        {
            r.Error(at, message);
            return fallback;
        }
    }

    private static RuleEntry ReadMatch(YamlReader r, string file, YamlNode node, string id, YamlMappingNode m)
    {
        var match = r.Mapping(YamlReader.Get(m, "match"), $"'{id}' match", MatchFields);
        var classes = ToolClasses.None;
        foreach (var c in r.StringList(YamlReader.Get(match, "class"), "match.class"))
        {
            if (ToolClassifier.Parse(c) is { } cls)
            {
                classes |= cls;
            }
            else
            {
                r.Error(YamlReader.Get(match, "class"), $"unknown class '{c}'", "classes are read_only, mutating, destructive, outbound");
            }
        }

        return new RuleEntry
        {
            Id = id,
            Servers = r.StringList(YamlReader.Get(match, "server"), "match.server").Select(s => new Glob(s)).ToList(),
            Targets = r.StringList(YamlReader.Get(match, "tool"), "match.tool").Select(s => new Glob(s)).ToList(),
            Classes = classes,
            AgentNames = r.StringList(YamlReader.Get(match, "agent"), "match.agent"),
            Groups = r.StringList(YamlReader.Get(match, "group"), "match.group"),
            Operations = [McpOperation.ToolCall],
            Effect = Effect.Allow,
            At = At(file, node),
        };
    }

    private RuleEntry? ReadRule(YamlReader r, string file, YamlNode node)
    {
        if (r.Mapping(node, "a rule", RuleFields) is not { } m)
        {
            return null;
        }

        var id = r.String(YamlReader.Get(m, "id"), "rule id");
        if (string.IsNullOrWhiteSpace(id))
        {
            r.Error(node, "a rule needs an id", "for example id: posting-needs-a-human");
            return null;
        }

        var effectNode = YamlReader.Get(m, "effect");
        var effectText = r.String(effectNode, "effect");
        var effect = EffectNames.Parse(effectText);
        if (effect is null)
        {
            r.Error(effectNode ?? node, effectText is null ? $"rule '{id}' needs an effect" : $"rule '{id}': effect must be allow, deny, ask or shadow, not '{effectText}'");
        }

        var match = r.Mapping(YamlReader.Get(m, "match"), $"rule '{id}' match", MatchFields);
        var servers = r.StringList(YamlReader.Get(match, "server"), "match.server").Select(s => new Glob(s)).ToList();
        var targets = r.StringList(YamlReader.Get(match, "tool"), "match.tool")
            .Concat(r.StringList(YamlReader.Get(match, "resource"), "match.resource"))
            .Concat(r.StringList(YamlReader.Get(match, "prompt"), "match.prompt"))
            .Select(s => new Glob(s)).ToList();
        var classes = ToolClasses.None;
        foreach (var c in r.StringList(YamlReader.Get(match, "class"), "match.class"))
        {
            if (ToolClassifier.Parse(c) is { } cls)
            {
                classes |= cls;
            }
            else
            {
                r.Error(YamlReader.Get(match, "class"), $"unknown class '{c}'", "classes are read_only, mutating, destructive, outbound");
            }
        }

        var operations = new List<McpOperation>();
        foreach (var op in r.StringList(YamlReader.Get(match, "method"), "match.method"))
        {
            if (EffectNames.ParseOperation(op) is { } o)
            {
                operations.Add(o);
            }
            else
            {
                r.Error(YamlReader.Get(match, "method"), $"unknown method '{op}'", "methods are tools/call, resources/read, prompts/get, sampling, elicitation");
            }
        }

        if (operations.Count == 0)
        {
            // A resource or prompt pattern implies its method; otherwise a rule is about tool calls.
            if (YamlReader.Get(match, "resource") is not null)
            {
                operations.Add(McpOperation.ResourceRead);
            }

            if (YamlReader.Get(match, "prompt") is not null)
            {
                operations.Add(McpOperation.PromptGet);
            }

            if (operations.Count == 0)
            {
                operations.Add(McpOperation.ToolCall);
            }
        }

        var whenNode = YamlReader.Get(m, "when");
        var modeText = r.String(YamlReader.Get(m, "mode"), "mode");
        AskMode? mode = modeText switch
        {
            null => null,
            "hold" => AskMode.Hold,
            "defer" => AskMode.Defer,
            _ => null,
        };
        if (modeText is not null && mode is null)
        {
            r.Error(YamlReader.Get(m, "mode"), $"mode must be hold or defer, not '{modeText}'");
        }

        var approvers = r.StringList(YamlReader.Get(m, "approvers"), "approvers");
        var timeout = r.Duration(YamlReader.Get(m, "timeout"), "timeout");
        if (effect is not Effect.Ask && (approvers.Count > 0 || timeout is not null || mode is not null))
        {
            r.Warning(node, $"rule '{id}': approvers, timeout and mode apply only to effect ask");
        }

        return new RuleEntry
        {
            Id = id,
            Description = r.String(YamlReader.Get(m, "description"), "description"),
            Servers = servers,
            Targets = targets,
            Classes = classes,
            AgentNames = r.StringList(YamlReader.Get(match, "agent"), "match.agent"),
            Groups = r.StringList(YamlReader.Get(match, "group"), "match.group"),
            Operations = operations,
            When = r.String(whenNode, "when"),
            WhenAt = At(file, whenNode),
            Effect = effect ?? Effect.Deny,
            Message = r.String(YamlReader.Get(m, "message"), "message"),
            Approvers = approvers,
            Timeout = timeout,
            Mode = mode,
            TwoPerson = r.Bool(YamlReader.Get(m, "two_person"), "two_person") ?? false,
            At = At(file, node),
        };
    }
}
