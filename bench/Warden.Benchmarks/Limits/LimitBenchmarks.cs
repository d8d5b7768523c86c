using BenchmarkDotNet.Attributes;
using Warden.Core;
using Warden.Core.Limits;
using Warden.Core.Pipeline;
using Warden.Core.Policy;

namespace Warden.Benchmarks.Limits;

/// <summary>
/// What limits add to one call (issue 6 target: under 200 ns): <see cref="CompiledPolicy.LimitsFor"/> (which limits
/// cover the call) and <see cref="LimitCounters.Acquire"/> with 1, 2 or 3 applicable limits (rate; + concurrency,
/// released as the call ends; + a budget's sliding window), none of them exceeded.
/// </summary>
[MemoryDiagnoser]
public class LimitBenchmarks
{
    private CompiledPolicy _policy = null!;
    private CallContext _call = null!;
    private LimitCounters _counters = null!;
    private IReadOnlyList<LimitRule> _limits = null!;

    /// <summary>Limits that apply to the call.</summary>
    [Params(1, 2, 3)]
    public int Limits { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        // Capacities no benchmark run reaches: the measured path is "counted, allowed".
        var limits = new[]
        {
            "  - { id: rate, match: { server: mail, tool: delete_mail }, rate: 1000000000 per second }",
            "  - { id: at-once, match: { server: mail, tool: delete_mail }, concurrency: 1000 }",
            "  - { id: daily, match: { class: destructive }, budget: 100000000 per 1s }",
        };
        var text = $"""
            version: 1
            default: deny
            classes:
              mail: {"{"} delete_mail: [mutating, destructive] {"}"}
            rules:
              - id: deletions
                match: {"{"} server: mail, tool: delete_mail {"}"}
                effect: allow
              - id: other
                match: {"{"} server: docs {"}"}
                effect: allow
            limits:
            {string.Join("\n", limits.Take(Limits))}
              - {"{"} id: elsewhere, match: {"{"} server: docs {"}"}, rate: 10 per minute {"}"}
            """;
        var result = PolicyCompiler.Compile([("limits-bench.yaml", text)], (_, _) => null, PolicyConditions.Factory);
        _policy = result.Policy ?? throw new InvalidOperationException(string.Join(Environment.NewLine, result.Diagnostics));
        _call = new CallContext
        {
            Agent = new AgentIdentity("agent-1", ["t1"]),
            SessionId = "agent-1/s1",
            Operation = McpOperation.ToolCall,
            Server = "mail",
            Target = "delete_mail",
            Arguments = new Dictionary<string, System.Text.Json.JsonElement>(),
            AnnotatedClasses = ToolClasses.Mutating,
            ReceivedAt = DateTimeOffset.UnixEpoch,
        };
        _counters = new LimitCounters(TimeProvider.System);
        _limits = _policy.LimitsFor(_call);
        if (_limits.Count != Limits)
        {
            throw new InvalidOperationException($"{_limits.Count} limits apply, expected {Limits}");
        }
    }

    [Benchmark(Description = "LimitsFor")]
    public int LimitsFor() => _policy.LimitsFor(_call).Count;

    [Benchmark(Description = "Acquire + release")]
    public bool Acquire()
    {
        var verdict = _counters.Acquire(_limits, _call, out var release);
        release?.Dispose();
        return verdict.Ok;
    }

    [Benchmark(Description = "LimitsFor + Acquire + release (per call)")]
    public bool PerCall()
    {
        var verdict = _counters.Acquire(_policy.LimitsFor(_call), _call, out var release);
        release?.Dispose();
        return verdict.Ok;
    }
}
