using BenchmarkDotNet.Running;
using Warden.Benchmarks.Audit;

// `audit ...` runs the audit measurements (a console measurement; see docs/audit.md); anything else goes to BenchmarkDotNet.
if (args.Length > 0 && args[0] == "audit")
{
    return await AuditMeasurements.RunAsync(args[1..]).ConfigureAwait(false);
}

if (args.Length > 0 && args[0] == "dataguard")
{
    return Warden.Benchmarks.DataGuard.DataGuardMeasurements.Run(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
