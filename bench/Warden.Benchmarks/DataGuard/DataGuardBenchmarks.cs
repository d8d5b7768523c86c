using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Warden.Core.DataGuard;

namespace Warden.Benchmarks.DataGuard;

/// <summary>
/// The data guard's costs: scanning 1 MiB of plain prose (throughput per core, target at least 100 MB/s) and a
/// 1 KiB argument set as a tool call carries it (target under 20 µs), with and without a secret, and a result of
/// 1 MiB scanned window by window.
/// </summary>
[MemoryDiagnoser]
public class DataGuardBenchmarks
{
    private const int MiB = 1 << 20;
    private readonly DataScanner _scanner = new();
    private string _prose = "";
    private Dictionary<string, JsonElement> _args = null!;
    private Dictionary<string, JsonElement> _argsWithSecret = null!;
    private FingerprintSet _fingerprints = null!;

    [GlobalSetup]
    public void Setup()
    {
        // Prose with numbers, addresses of code, dates: what tool results and arguments mostly are.
        string[] lines =
        [
            "The quarterly review covers release 1.4.2, shipped on 2025-03-15 with 18 fixes and 3 known issues. ",
            "Customer feedback was positive; 37 tickets were closed and the p99 latency fell to 245 ms over 86,400 requests. ",
            "Next steps: retire the legacy importer, halve CI time, and move the build cache to the new runners in room 2.17. ",
            "See the handbook for on-call rotation; questions go to the #help channel, not to individual engineers. ",
        ];
        var sb = new StringBuilder(MiB + 200);
        var i = 0;
        while (sb.Length < MiB)
        {
            sb.Append(lines[i++ % lines.Length]);
        }

        _prose = sb.ToString(0, MiB);
        _args = Args("""{"topic":"release-1.4","text":"Release 1.4.2 shipped on 2025-03-15 with 18 fixes. Thanks to everyone who reviewed, tested and wrote the notes; the p99 latency fell to 245 ms over 86,400 requests and 37 tickets were closed. Next steps: retire the legacy importer, halve CI time, move the build cache to the new runners. Questions go to the help channel. See the handbook for the on-call rotation and the review rules; the roadmap draft lives in doc-2 and is open for comments until Friday. Reviewers: alice.martin, bob.nguyen, dave.kowalski. Links: https://wiki.corp.example/releases/1.4 and https://ci.corp.example/builds/20250315.3","tags":["release","ci","latency"],"notify":{"team":"platform","channel":"general","urgent":false}}""");
        _argsWithSecret = Args("""{"topic":"release-1.4","text":"Release 1.4.2 shipped on 2025-03-15 with 18 fixes. Thanks to everyone who reviewed, tested and wrote the notes; the p99 latency fell to 245 ms over 86,400 requests and 37 tickets were closed. Next steps: retire the legacy importer, halve CI time, move the build cache to the new runners. Questions go to the help channel. The export runs with aws_access_key_id=AKIAEXAMPLEFAKE00042 until Friday; the roadmap draft lives in doc-2. Reviewers: alice.martin, bob.nguyen, dave.kowalski. Links: https://wiki.corp.example/releases/1.4 and https://ci.corp.example/builds/20250315.3","tags":["release","ci","latency"],"notify":{"team":"platform","channel":"general","urgent":false}}""");
        // As the gateway holds them: the agent's set in its label table, read once per call.
        var labels = new LabelTable();
        labels.AddFingerprints("agent", "agent/1", perSession: false, "CONFIDENTIAL - HR only. Employee: Frank Li, born 1987-04-12. Current salary: 98,500 USD. Proposed: 104,000 USD. IBAN DE89 3704 0044 0532 0130 00.", DateTimeOffset.MaxValue);
        _fingerprints = labels.FingerprintsOf("agent", "agent/1", DateTimeOffset.UtcNow)!;
    }

    private static Dictionary<string, JsonElement> Args(string json) =>
        JsonDocument.Parse(json).RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());

    /// <summary>Bytes per operation for the MB/s figure: 1 MiB of ASCII.</summary>
    [Benchmark(Description = "scan 1 MiB plain prose")]
    public int PlainText() => _scanner.ScanText(_prose, "content[0]").Findings.Count;

    [Benchmark(Description = "1 KiB argument set, clean")]
    public int Arguments() => _scanner.ScanArguments(_args).Findings.Count;

    [Benchmark(Description = "1 KiB argument set, one secret")]
    public int ArgumentsWithSecret() => _scanner.ScanArguments(_argsWithSecret).Findings.Count;

    [Benchmark(Description = "1 KiB argument set, clean, with fingerprints of a labelled read")]
    public int ArgumentsWithFingerprints() => _scanner.ScanArguments(_args, _fingerprints).Findings.Count;
}
