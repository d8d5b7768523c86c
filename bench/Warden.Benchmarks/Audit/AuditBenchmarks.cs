using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Warden.Core.Audit;

namespace Warden.Benchmarks.Audit;

/// <summary>
/// The audit's CPU-bound pieces, alone: the chain hash of one record (what the writer pays per event and verify per
/// record), argument masking (what the writer pays per decision record), and the pure verifier over 10,000
/// in-memory records. Run: <c>dotnet run -c Release --project bench/Warden.Benchmarks -- --filter *AuditBenchmarks*</c>.
/// The store-level figures (group commit, verify of 1,000,000 records, decision path) are in AuditMeasurements.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class AuditBenchmarks
{
    private static readonly byte[] Key = new byte[32];
    private readonly AuditDigester _digester = new(Key);
    private readonly Dictionary<string, JsonElement> _args = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(
        """{"ids":["mail-001","mail-002","mail-003"],"note":"please tidy up the inbox before Friday","password":"hunter2","options":{"dry_run":false}}""")!;

    private AuditEvent _event = null!;
    private byte[] _prev = null!;
    private List<AuditEvent> _chain = null!;
    private AuditHead _head;

    [GlobalSetup]
    public void Setup()
    {
        _event = AuditMeasurements.Event(0);
        _prev = new byte[32];
        _chain = new List<AuditEvent>(10_000);
        var prev = new byte[32];
        for (var i = 1; i <= 10_000; i++)
        {
            var e = AuditMeasurements.Event(i);
            var hash = AuditCanonical.ComputeHash(e, i, prev);
            _chain.Add(e with { Seq = i, PrevHash = prev, Hash = hash });
            prev = hash;
        }

        _head = new AuditHead(10_000, prev);
    }

    [Benchmark]
    public void ChainHash()
    {
        Span<byte> hash = stackalloc byte[32];
        AuditCanonical.ComputeHash(_event, 42, _prev, hash);
    }

    [Benchmark]
    public string? MaskArguments() => _digester.MaskArguments(_args);

    [Benchmark(OperationsPerInvoke = 10_000)]
    public bool Verify10k() => AuditVerifier.Verify(_chain, _head).Ok;
}
