using BenchmarkDotNet.Running;
using Warden.Benchmarks.Audit;

// `audit ...` runs the audit measurements (a console measurement; see docs/audit.md); anything else goes to BenchmarkDotNet.
if (args.Length > 0 && args[0] == "audit")
{
    return await AuditMeasurements.RunAsync(args[1..]).ConfigureAwait(false);
}

// `count SCENARIO N` runs one benchmark body in a loop, for instruction counts under callgrind.
if (args.Length > 0 && args[0] == "count")
{
    return Warden.Benchmarks.Counting.InstructionCount.Run(args[1..]);
}

// `dataguard ...` measures the data guard's CPU time per megabyte and per argument set.
if (args.Length > 0 && args[0] == "dataguard")
{
    return Warden.Benchmarks.DataGuard.DataGuardMeasurements.Run(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
