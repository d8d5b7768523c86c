using System.Text;
using CsCheck;
using Warden.Core.Pipeline;
using Warden.Core.Policy;

namespace Warden.Core.Tests.Policy;

/// <summary>
/// Properties of evaluation that no example list can cover: order independence, determinism across
/// compilations, and atomic hot reload under concurrent deciders.
/// </summary>
public class PolicyPropertyTests
{
    private sealed record RuleSpec(string Effect, string? Server, string? Tool, string? Class, string? Group, string? Method, string? When)
    {
        public string Yaml(int id)
        {
            var match = new List<string>();
            if (Server is not null)
            {
                match.Add($"server: \"{Server}\"");
            }

            if (Tool is not null)
            {
                match.Add($"tool: \"{Tool}\"");
            }

            if (Class is not null)
            {
                match.Add($"class: {Class}");
            }

            if (Group is not null)
            {
                match.Add($"group: {Group}");
            }

            if (Method is not null)
            {
                match.Add($"method: {Method}");
            }

            var sb = new StringBuilder();
            sb.Append($"  - id: r{id}\n");
            if (match.Count > 0)
            {
                sb.Append($"    match: {{ {string.Join(", ", match)} }}\n");
            }

            if (When is not null)
            {
                sb.Append($"    when: '{When}'\n");
            }

            sb.Append($"    effect: {Effect}\n");
            return sb.ToString();
        }
    }

    private sealed record CallSpec(string Server, string Tool, int Classes, string? Args, string Agent, string[] Groups, McpOperation Operation)
    {
        public CallContext Build() => PolicyKit.Call(Server, Tool, Args, Agent, Groups, (ToolClasses)Classes, Operation);
    }

    private static Gen<T> Pick<T>(params T[] items) => Gen.Int[0, items.Length - 1].Select(i => items[i]);

    private static Gen<T?> Maybe<T>(Gen<T> gen)
        where T : class => Gen.Frequency((1, Gen.Const((T?)null)), (1, gen.Select(x => (T?)x)));

    private static readonly Gen<RuleSpec> RuleGen = Gen.Select(
        Pick("allow", "deny", "ask", "shadow"),
        Maybe(Pick("mail", "forum", "m*", "*")),
        Maybe(Pick("delete_*", "send", "post", "read_*", "*")),
        Maybe(Pick("read_only", "outbound", "destructive", "[mutating, outbound]")),
        Maybe(Pick("ops", "assistants")),
        Gen.Frequency((6, Gen.Const((string?)null)), (1, Gen.Const((string?)"sampling")), (1, Gen.Const((string?)"[tools/call, prompts/get]"))),
        Maybe(Pick(
            "args.n > 3",
            "args.n <= 3",
            "size(args.ids) > 2",
            "args.s in lists.names",
            "\"ops\" in context.agent.groups",
            "\"outbound\" in context.tool.classes",
            "has(args.n) && args.n == 1",
            "args.s in lists.others",
            "args.s in lists.third && args.n < 4.5",
            "!(args.s in lists.names) || args.n >= -0.5",
            "args.s == \"ann\" || has(args.ids)"))).Select((e, s, t, c, g, m, w) => new RuleSpec(e, s, t, c, g, m, w));

    private static readonly Gen<CallSpec> CallGen = Gen.Select(
        Pick("mail", "forum", "docs"),
        Pick("delete_all", "send", "post", "read_mail", "other"),
        Gen.Int[0, 15],
        Pick<string?>(null, "{}", """{"n": 1}""", """{"n": 5}""", """{"n": "x"}""", """{"ids": [1, 2, 3], "n": 2}""", """{"ids": [], "s": "ann"}""", """{"s": "zed", "n": 4.5}""", """{"s": "bob", "n": -0.5}""", """{"s": "ann", "n": 1e2}""", """{"s": 3, "n": 12345678901234567890}""", """{"s": "b\u006fb", "n": 3.0}"""),
        Pick("bot", "helper", "stranger"),
        Pick<string[]>([], ["ops"], ["assistants"], ["ops", "assistants"]),
        Gen.Frequency((6, Gen.Const(McpOperation.ToolCall)), (1, Gen.Const(McpOperation.Sampling)), (1, Gen.Const(McpOperation.PromptGet))))
        .Select((s, t, c, a, ag, g, op) => new CallSpec(s, t, c, a, ag, g, op));

    private const string Header = """
        default: deny
        agents:
          helper: { groups: [assistants] }
        lists:
          names: [ann, bob]
          others: [zed, bob]
          third: [ann, zed]
        classes:
          mail: { "delete_*": [mutating, destructive] }
        rules:

        """;

    private static string PolicyText(IReadOnlyList<RuleSpec> rules, string defaultEffect = "deny") =>
        Header.Replace("default: deny", "default: " + defaultEffect, StringComparison.Ordinal) + string.Concat(rules.Select((r, i) => r.Yaml(i)));

    private static string PolicyText(IReadOnlyList<(RuleSpec Rule, int Id)> rules) =>
        Header + string.Concat(rules.Select(r => r.Rule.Yaml(r.Id)));

    private static CompiledPolicy CompileOk(string text)
    {
        var result = PolicyCompiler.Compile([("p.yaml", text)], (_, _) => null, PolicyConditions.Factory);
        Assert.True(result.Success, text + Environment.NewLine + string.Join(Environment.NewLine, result.Diagnostics));
        return result.Policy!;
    }

    private static (Effect, bool) Outcome(Decision d) => (d.Effect, d.IsError);

    [Fact]
    public void Decide_AnyRuleOrder_SameEffect()
    {
        Gen.Select(RuleGen.Array[0, 12], Gen.Int.Array[12], CallGen.Array[1, 20]).Sample(t =>
        {
            var (rules, keys, calls) = t;
            var numbered = rules.Select((r, i) => (Rule: r, Id: i)).ToList();
            var shuffled = numbered.OrderBy(x => keys[x.Id]).ThenBy(x => x.Id).ToList();
            var a = CompileOk(PolicyText(numbered));
            var b = CompileOk(PolicyText(shuffled));
            foreach (var spec in calls)
            {
                var da = a.Decide(spec.Build());
                var db = b.Decide(spec.Build());
                Assert.True(Outcome(da) == Outcome(db), $"{spec}: {PolicyKit.Show(da)} vs {PolicyKit.Show(db)}\n{PolicyText(numbered)}\n---\n{PolicyText(shuffled)}");

                // The deciding rule really has the decided effect (or is the default, or errored).
                if (!da.IsError && da.RuleId != "default")
                {
                    Assert.Equal(da.Effect, a.Rules.Single(r => r.Id == da.RuleId).Entry.Effect);
                }
            }
        }, iter: 300);
    }

    [Fact]
    public void Decide_MatchesReferenceModel_MaxOfMatchingEffects()
    {
        // Reference: the decision is the strongest effect among the rules Explain says matched, the default when none did,
        // and an error whenever a matched rule's condition failed.
        Gen.Select(RuleGen.Array[0, 10], CallGen.Array[1, 10], Pick("allow", "deny", "ask", "shadow")).Sample(t =>
        {
            var (rules, calls, def) = t;
            var policy = CompileOk(PolicyText(rules, def));
            foreach (var spec in calls)
            {
                var (decision, trace) = policy.Explain(spec.Build());
                var matched = trace.Where(x => x.Matched).ToList();
                var error = matched.Any(x => x.Why.Contains("counts as an error", StringComparison.Ordinal));
                var expected = error ? Effect.Deny : matched.Count == 0 ? EffectNames.Parse(def)!.Value : matched.Max(x => x.Effect);
                Assert.Equal((expected, error), Outcome(decision));

                // Explain evaluates each condition on its own; Decide shares argument reads across the rules of one
                // decision. Both must name the same rule: the first that errs, else the first with the strongest effect.
                var rule = error ? matched.First(x => x.Why.Contains("counts as an error", StringComparison.Ordinal)).RuleId
                    : matched.Count == 0 ? "default" : matched.First(x => x.Effect == expected).RuleId;
                Assert.Equal(rule, decision.RuleId);
            }
        }, iter: 300);
    }

    [Fact]
    public void Decide_PolicyAndReloadedCopy_DecideIdentically()
    {
        Gen.Select(RuleGen.Array[0, 12], CallGen.Array[1, 20]).Sample(t =>
        {
            var (rules, calls) = t;
            var text = PolicyText(rules);
            var first = CompileOk(text);
            var second = CompileOk(text);
            Assert.Equal(first.Version, second.Version);
            foreach (var spec in calls)
            {
                Assert.Equal(first.Decide(spec.Build()), second.Decide(spec.Build()));
            }
        }, iter: 200);
    }

    [Fact]
    public void PolicyHolder_SwapUnderLoad_EveryDecisionIsWhollyOneVersion()
    {
        Gen.Select(RuleGen.Array[1, 10], RuleGen.Array[1, 10], CallGen.Array[8, 16]).Sample(t =>
        {
            var (rulesA, rulesB, specs) = t;
            var a = CompileOk(PolicyText(rulesA, "deny"));
            var b = CompileOk(PolicyText(rulesB, "allow"));
            if (a.Version == b.Version)
            {
                return;
            }

            // What each version alone decides, computed up front on private call objects.
            var expected = new Dictionary<string, Decision[]>
            {
                [a.Version] = [.. specs.Select(s => a.Decide(s.Build()))],
                [b.Version] = [.. specs.Select(s => b.Decide(s.Build()))],
            };

            var holder = new PolicyHolder();
            holder.Swap(a, DateTimeOffset.UnixEpoch);
            var stage = new PolicyStage(holder);
            using var stop = new CancellationTokenSource();
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var decided = 0;

            var deciders = Enumerable.Range(0, 3).Select(w => Task.Run(() =>
            {
                // Each decider owns its call objects, as each transport request does.
                var calls = specs.Select(s => s.Build()).ToArray();
                var i = w;
                while (!stop.IsCancellationRequested || Volatile.Read(ref decided) < 2000)
                {
                    var k = i++ % calls.Length;
                    var d = stage.Evaluate(calls[k])!.Value;
                    if (!expected.TryGetValue(d.PolicyVersion, out var byVersion))
                    {
                        failures.Enqueue($"unknown version {d.PolicyVersion}");
                    }
                    else if (byVersion[k] != d)
                    {
                        failures.Enqueue($"{specs[k]} under {d.PolicyVersion}: got {PolicyKit.Show(d)}, that version alone decides {PolicyKit.Show(byVersion[k])}");
                    }

                    Interlocked.Increment(ref decided);
                    if (Volatile.Read(ref decided) > 200_000)
                    {
                        break;
                    }
                }
            })).ToArray();

            var swapper = Task.Run(() =>
            {
                for (var n = 0; n < 500; n++)
                {
                    holder.Swap(n % 2 == 0 ? b : a, DateTimeOffset.UnixEpoch);
                    Thread.SpinWait(50);
                }

                stop.Cancel();
            });

            Task.WaitAll([swapper, .. deciders]);
            Assert.True(failures.IsEmpty, string.Join(Environment.NewLine, failures.Take(5)));
        }, iter: 20, threads: 1);
    }
}
