using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Warden.Core.Pipeline;
using Warden.Core.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Warden.Core.Policy;

/// <summary>
/// Users' own policy tests: each case is a call with its context and the expected effect and rule.
/// <c>warden policy test</c> runs them so a policy change is checked in CI before it goes live.
/// </summary>
public sealed class PolicyTestSuite
{
    private static readonly string[] TopFields = ["policy", "separator", "cases"];
    private static readonly string[] CaseFields = ["name", "agent", "groups", "tool", "server", "resource", "prompt", "method", "args", "classes", "labels", "expect"];

    private PolicyTestSuite(string file) => File = file;

    /// <summary>The test file.</summary>
    public string File { get; }

    /// <summary>The policy path, relative to the test file.</summary>
    public string? PolicyPath { get; private set; }

    /// <summary>Problems in the test file itself.</summary>
    public IReadOnlyList<SourceDiagnostic> Diagnostics { get; private set; } = [];

    /// <summary>The cases.</summary>
    public IReadOnlyList<PolicyTestCase> Cases { get; private set; } = [];

    /// <summary>Parses a test file.</summary>
    public static PolicyTestSuite Parse(string file, string text)
    {
        var suite = new PolicyTestSuite(file);
        var r = new YamlReader(file);
        var root = r.Mapping(r.Parse(text), "a policy test file", TopFields);
        suite.PolicyPath = r.String(YamlReader.Get(root, "policy"), "policy");
        var sep = r.String(YamlReader.Get(root, "separator"), "separator") ?? "__";
        var cases = new List<PolicyTestCase>();
        if (YamlReader.Get(root, "cases") is YamlSequenceNode seq)
        {
            foreach (var node in seq.Children)
            {
                if (r.Mapping(node, "a test case", CaseFields) is not { } m)
                {
                    continue;
                }

                var name = r.String(YamlReader.Get(m, "name"), "name") ?? $"case at line {YamlReader.Line(node)}";
                var expect = r.Mapping(YamlReader.Get(m, "expect"), "expect", "effect", "rule");
                var effect = r.String(YamlReader.Get(expect, "effect"), "expect.effect");
                if (effect is null || (effect != "error" && EffectNames.Parse(effect) is null))
                {
                    r.Error(expect ?? node, $"case '{name}': expect.effect must be allow, deny, ask, shadow or error");
                    continue;
                }

                var method = r.String(YamlReader.Get(m, "method"), "method") ?? (YamlReader.Get(m, "resource") is not null ? "resources/read" : YamlReader.Get(m, "prompt") is not null ? "prompts/get" : "tools/call");
                if (EffectNames.ParseOperation(method) is not { } operation)
                {
                    r.Error(YamlReader.Get(m, "method"), $"unknown method '{method}'");
                    continue;
                }

                string? server = r.String(YamlReader.Get(m, "server"), "server");
                var target = r.String(YamlReader.Get(m, "tool"), "tool") ?? r.String(YamlReader.Get(m, "resource"), "resource") ?? r.String(YamlReader.Get(m, "prompt"), "prompt") ?? "";
                if (server is null)
                {
                    var i = target.IndexOf(sep, StringComparison.Ordinal);
                    if (i <= 0)
                    {
                        r.Error(node, $"case '{name}': name the server (server: X) or write tool as SERVER{sep}TOOL");
                        continue;
                    }

                    server = target[..i];
                    target = target[(i + sep.Length)..];
                }

                var classNames = r.StringList(YamlReader.Get(m, "classes"), "classes");
                var classes = ToolClasses.None;
                foreach (var c in classNames)
                {
                    classes |= ToolClassifier.Parse(c) ?? ToolClasses.None;
                }

                Dictionary<string, JsonElement>? args = null;
                if (YamlReader.Get(m, "args") is { } argsNode)
                {
                    if (ToJson(argsNode) is JsonObject obj)
                    {
                        using var doc = JsonDocument.Parse(obj.ToJsonString());
                        args = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
                    }
                    else
                    {
                        r.Error(argsNode, $"case '{name}': args must be a mapping");
                    }
                }

                var agent = r.String(YamlReader.Get(m, "agent"), "agent") ?? "test-agent";
                cases.Add(new PolicyTestCase(
                    name,
                    new CallContext
                    {
                        Agent = new AgentIdentity(agent, r.StringList(YamlReader.Get(m, "groups"), "groups")),
                        SessionId = agent,
                        Operation = operation,
                        Server = server,
                        Target = target,
                        Arguments = args,
                        AnnotatedClasses = classNames.Count > 0 ? classes : operation == McpOperation.ToolCall ? ToolClassifier.FromAnnotations(null, null, null) : ToolClasses.ReadOnly,
                        SessionLabels = r.StringList(YamlReader.Get(m, "labels"), "labels"),
                        ReceivedAt = DateTimeOffset.UnixEpoch,
                    },
                    effect,
                    r.String(YamlReader.Get(expect, "rule"), "expect.rule"),
                    YamlReader.Line(node)));
            }
        }
        else
        {
            r.Error(root, "a policy test file needs cases: [...]");
        }

        suite.Cases = cases;
        suite.Diagnostics = r.Diagnostics;
        return suite;
    }

    /// <summary>Runs every case against a policy.</summary>
    public IEnumerable<PolicyTestResult> Run(CompiledPolicy policy)
    {
        foreach (var c in Cases)
        {
            var decision = policy.Decide(c.Call);
            if (policy.DataGuard is { } guard && !decision.IsError && decision.Effect != Effect.Deny)
            {
                // Cases see the data guard's verdict on their arguments too (data-guard:KIND), as the gateway would.
                decision = DataGuard.DataGuardStage.Apply(guard, c.Call, decision, null);
            }

            var effect = decision.IsError ? "error" : EffectNames.Name(decision.Effect);
            var ok = effect == c.ExpectedEffect && (c.ExpectedRule is null || c.ExpectedRule == decision.RuleId);
            var got = $"{effect} by {decision.RuleId}";
            yield return new PolicyTestResult(c.Name, ok, ok ? got : $"expected {c.ExpectedEffect}{(c.ExpectedRule is null ? "" : " by " + c.ExpectedRule)}, got {got}{(decision.Reason is null ? "" : $" ({decision.Reason})")} [{File}:{c.Line}]");
        }
    }

    /// <summary>Converts YAML to JSON with YAML's plain-scalar typing (numbers, booleans, null); quoted scalars stay strings.</summary>
    public static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value)))),
        YamlSequenceNode s => new JsonArray([.. s.Children.Select(ToJson)]),
        YamlScalarNode { Style: ScalarStyle.Plain } p => Plain(p.Value),
        YamlScalarNode q => JsonValue.Create(q.Value),
        _ => null,
    };

    private static JsonNode? Plain(string? v)
    {
        if (v is null or "~" or "null" or "")
        {
            return null;
        }

        if (v is "true" or "false")
        {
            return JsonValue.Create(v == "true");
        }

        if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            return JsonValue.Create(l);
        }

        if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            return JsonValue.Create(d);
        }

        return JsonValue.Create(v);
    }
}

/// <summary>One policy test case.</summary>
public sealed record PolicyTestCase(string Name, CallContext Call, string ExpectedEffect, string? ExpectedRule, int Line);

/// <summary>The result of one case.</summary>
public sealed record PolicyTestResult(string Name, bool Passed, string Detail);
