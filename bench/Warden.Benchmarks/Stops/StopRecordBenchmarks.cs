using BenchmarkDotNet.Attributes;
using Warden.Core.Stops;
using Warden.Storage.Sqlite;

namespace Warden.Benchmarks.Stops;

/// <summary>
/// The store write a stop's acknowledgement waits for (issue 6): the stop and its change row committed on the
/// stopping thread (<c>TryAddStopNow</c>), on a real SQLite file in WAL mode with process durability. Alone on an
/// idle store: what is left of the acknowledgement's tail beyond this is waiting for a core.
/// Run: <c>dotnet run -c Release --project bench/Warden.Benchmarks -- --filter *StopRecordBenchmarks*</c>.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class StopRecordBenchmarks
{
    private string _folder = "";
    private SqliteWardenStore _store = null!;
    private int _n;

    [GlobalSetup]
    public void Setup()
    {
        _folder = Directory.CreateTempSubdirectory("warden-stopbench-").FullName;
        _store = new SqliteWardenStore(SqliteStoreOptions.ForDataFolder(_folder));
        _store.InitializeAsync().AsTask().GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_folder, recursive: true);
    }

    [Benchmark]
    public bool RecordStop() =>
        _store.TryAddStopNow(new StopRecord($"stp_bench{++_n:x8}", StopScope.All, "", "bench-ops", "rep", DateTimeOffset.UtcNow, false));
}
