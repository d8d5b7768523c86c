using System.Globalization;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Warden.Core;
using Warden.Core.Pipeline;
using Warden.Core.Policy;

namespace Warden.Benchmarks.Policy;

/// <summary>
/// One policy decision against 10, 100 and 1000 rules with argument conditions, mirroring the Cedar peer
/// (/work/shared/bench-peers, <c>bench_cedar.sh</c>): agent "agent-1" in team t1 calls <c>send_email</c> with
/// recipient, subject, body and amount; the allow call goes to bob@corp.example, the deny call to mallory@evil.example.
/// Rules are spread over about N/10 tools; every tenth rule names <c>send_email</c>, so at least 10% of the rules
/// (all of them at N = 10) are candidates for the benchmarked call and have their conditions evaluated,
/// plus two global rules that apply to every tool, as in Cedar's "scoped" set.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class PolicyDecisionBenchmarks
{
    private CompiledPolicy _policy = null!;
    private CallContext _allow = null!;
    private CallContext _deny = null!;

    /// <summary>Rules in the policy.</summary>
    [Params(10, 100, 1000)]
    public int Rules { get; set; }

    /// <summary>Rules whose match names the benchmarked tool (or any tool); their conditions run on every decision.</summary>
    public int CandidateRules => _policy.Rules.Count(r => r.MatchesTargetForBench("mail", "send_email"));

    [GlobalSetup]
    public void Setup()
    {
        _policy = Compile(PolicyText(Rules));
        _allow = Call("bob@corp.example");
        _deny = Call("mallory@evil.example");

        // The benchmark measures the right paths or nothing.
        var a = _policy.Decide(_allow);
        var d = _policy.Decide(_deny);
        if (a.Effect != Effect.Allow || a.IsError || d.Effect != Effect.Deny || d.IsError)
        {
            throw new InvalidOperationException($"unexpected decisions: allow call -> {a}, deny call -> {d}");
        }
    }

    [Benchmark(Description = "decide (allow path)")]
    public Decision Allow() => _policy.Decide(_allow);

    [Benchmark(Description = "decide (deny path)")]
    public Decision Deny() => _policy.Decide(_deny);

    /// <summary>The generated policy (public so tests and docs can show it).</summary>
    public static string PolicyText(int n)
    {
        var tools = Math.Max(1, n / 10);
        var sb = new StringBuilder();
        sb.Append("version: 1\ndefault: deny\nlists:\n  payees: [alice@corp.example, bob@corp.example, carol@corp.example, dan@supplier.example]\n");
        sb.Append("  blocked: [mallory@evil.example, eve@evil.example]\n");
        sb.Append("rules:\n");
        sb.Append("  - id: global-no-rmrf\n    when: has(args.cmd) && args.cmd.contains(\"rm -rf\")\n    effect: deny\n");
        sb.Append("  - id: global-no-etc\n    when: has(args.path) && args.path.startsWith(\"/etc/\")\n    effect: deny\n");
        for (var i = 0; i < n - 2; i++)
        {
            var onTarget = i % 10 == 0 || tools == 1;
            var tool = onTarget ? "send_email" : "tool_" + (1 + (i % (tools - 1)));
            var k = onTarget ? i / 10 : i;
            sb.Append(CultureInfo.InvariantCulture, $"  - id: r{i}\n    match: {{ server: mail, tool: {tool}{(k % 2 == 0 ? ", group: t1" : "")} }}\n");
            (string when, string effect) = (k % 4) switch
            {
                0 => ("args.amount < 1000.0 && args.recipient in lists.payees", "allow"),
                1 => ("args.recipient in lists.blocked", "deny"),
                2 => ($"args.amount >= {5000 + k}.0 && args.recipient in lists.payees", "ask"),
                _ => ($"args.recipient == \"x{k}@blocked.example\" || args.amount > {100000 + k}.0", "deny"),
            };
            sb.Append(CultureInfo.InvariantCulture, $"    when: '{when}'\n    effect: {effect}\n");
        }

        return sb.ToString();
    }

    private static CompiledPolicy Compile(string text)
    {
        var result = PolicyCompiler.Compile([("bench.yaml", text)], (_, _) => null, PolicyConditions.Factory);
        return result.Policy ?? throw new InvalidOperationException(string.Join(Environment.NewLine, result.Diagnostics));
    }

    private static CallContext Call(string recipient)
    {
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(new { recipient, subject = "quarterly report", body = "see attached", amount = 42 }));
        return new CallContext
        {
            Agent = new AgentIdentity("agent-1", ["t1"]),
            SessionId = "agent-1",
            Operation = McpOperation.ToolCall,
            Server = "mail",
            Target = "send_email",
            Arguments = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()),
            AnnotatedClasses = ToolClasses.Mutating | ToolClasses.Outbound,
            ReceivedAt = DateTimeOffset.UnixEpoch,
        };
    }
}

internal static class CompiledRuleBenchExtensions
{
    public static bool MatchesTargetForBench(this CompiledRule rule, string server, string tool) =>
        rule.Entry.Operations.Contains(McpOperation.ToolCall)
        && (rule.Entry.Servers.Count == 0 || rule.Entry.Servers.Any(g => g.IsMatch(server)))
        && (rule.Entry.Targets.Count == 0 || rule.Entry.Targets.Any(g => g.IsMatch(tool)));
}
