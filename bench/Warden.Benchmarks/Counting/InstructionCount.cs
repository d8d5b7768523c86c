using System.Diagnostics;
using System.Globalization;
using Warden.Benchmarks.Conditions;
using Warden.Benchmarks.Limits;
using Warden.Benchmarks.Policy;

namespace Warden.Benchmarks.Counting;

/// <summary>
/// Runs one benchmark body in a plain loop, for load-independent comparisons under
/// <c>valgrind --tool=callgrind</c>: the instructions of a run with N iterations minus those of a run with 0,
/// divided by N, are the instructions per call (see docs/benchmarks.md, "Instruction counts"). The same loop without
/// valgrind prints a rough ns/op.
/// </summary>
internal static class InstructionCount
{
    public static int Run(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: count SCENARIO ITERATIONS [WARMUP]   scenarios: " + string.Join(", ", Scenarios.Keys));
            return 2;
        }

        if (!Scenarios.TryGetValue(args[0], out var make))
        {
            Console.Error.WriteLine("unknown scenario; known: " + string.Join(", ", Scenarios.Keys));
            return 2;
        }

        var n = long.Parse(args[1], CultureInfo.InvariantCulture);
        var warmup = args.Length > 2 ? long.Parse(args[2], CultureInfo.InvariantCulture) : 300_000;
        var body = make();

        // Warm-up reaches tier 1 (with dynamic PGO); the pause lets the background JIT finish before the loop.
        for (long i = 0; i < warmup; i++)
        {
            body();
        }

        Thread.Sleep(500);
        for (long i = 0; i < warmup / 10; i++)
        {
            body();
        }

        Thread.Sleep(200);
        var sw = Stopwatch.StartNew();
        for (long i = 0; i < n; i++)
        {
            body();
        }

        sw.Stop();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{args[0]}: {n} iterations, {(n == 0 ? 0 : sw.Elapsed.TotalNanoseconds / n):0.0} ns/op (wall clock, not for comparison)"));
        return 0;
    }

    private static readonly Dictionary<string, Func<Action>> Scenarios = Build();

    private static Dictionary<string, Func<Action>> Build()
    {
        var d = new Dictionary<string, Func<Action>>(StringComparer.Ordinal);
        foreach (var (name, _) in ConditionBenchmarks.Expressions)
        {
            d["cond-" + name] = () =>
            {
                var b = new ConditionBenchmarks();
                b.SetupWarden();
                var m = typeof(ConditionBenchmarks).GetMethod("Warden_" + name)!.CreateDelegate<Func<bool>>(b);
                return () => m();
            };
        }

        foreach (var rules in new[] { 10, 100, 1000 })
        {
            d[$"policy-{rules}-allow"] = () =>
            {
                var b = new PolicyDecisionBenchmarks { Rules = rules };
                b.Setup();
                return () => b.Allow();
            };
            d[$"policy-{rules}-deny"] = () =>
            {
                var b = new PolicyDecisionBenchmarks { Rules = rules };
                b.Setup();
                return () => b.Deny();
            };
        }

        foreach (var limits in new[] { 1, 2, 3 })
        {
            d[$"limits-{limits}"] = () =>
            {
                var b = new LimitBenchmarks { Limits = limits };
                b.Setup();
                return () => b.PerCall();
            };
        }

        // The data guard: a 1 KiB argument set clean, with a secret, and with the fingerprints of a labelled read.
        d["dataguard-args"] = () => DataGuardBody(b => b.Arguments());
        d["dataguard-args-secret"] = () => DataGuardBody(b => b.ArgumentsWithSecret());
        d["dataguard-args-fingerprints"] = () => DataGuardBody(b => b.ArgumentsWithFingerprints());
        return d;
    }

    private static Action DataGuardBody(Func<DataGuard.DataGuardBenchmarks, int> op)
    {
        var b = new DataGuard.DataGuardBenchmarks();
        b.Setup();
        return () => op(b);
    }
}
