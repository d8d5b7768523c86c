using System.Diagnostics;
using System.Globalization;

namespace Warden.Benchmarks.DataGuard;

/// <summary>
/// `dotnet run -c Release --project bench/Warden.Benchmarks -- dataguard [seconds]`: the data guard's figures in
/// process CPU time as well as wall time. On a shared machine (load average far above the core count) wall time
/// measures the queue for a core; CPU time per operation is what the scan itself costs on one core.
/// </summary>
internal static class DataGuardMeasurements
{
    public static int Run(string[] args)
    {
        var seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        var b = new DataGuardBenchmarks();
        b.Setup();
        Console.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}");
        Measure("scan 1 MiB plain prose", () => b.PlainText(), seconds, bytes: 1 << 20);
        Measure("1 KiB argument set, clean", () => b.Arguments(), seconds);
        Measure("1 KiB argument set, one secret", () => b.ArgumentsWithSecret(), seconds);
        Measure("1 KiB argument set, clean, with fingerprints", () => b.ArgumentsWithFingerprints(), seconds);
        Console.WriteLine($"load average: {File.ReadAllText("/proc/loadavg").Trim()}");
        return 0;
    }

    private static void Measure(string name, Func<int> op, double seconds, int bytes = 0)
    {
        // Warm up past tiered compilation, then count operations for the given wall time.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed.TotalSeconds < Math.Min(1, seconds / 2))
        {
            op();
        }

        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        long n = 0;
        while (wall.Elapsed.TotalSeconds < seconds)
        {
            op();
            n++;
        }

        wall.Stop();
        process.Refresh();
        var cpu = (process.TotalProcessorTime - cpu0).TotalMicroseconds / n;
        var w = wall.Elapsed.TotalMicroseconds / n;
        var rate = bytes == 0 ? "" : $"; {bytes / cpu:0} MB/s per core by CPU time, {bytes / w:0} MB/s by wall time";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {n} ops; CPU {cpu:0.0} us/op, wall {w:0.0} us/op{rate}"));
    }
}
