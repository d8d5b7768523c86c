using System.Text;
using System.Text.Json;
using Warden.Core.DataGuard;

namespace Warden.Core.Tests.DataGuard;

/// <summary>
/// The argument scan matches each plain field's fingerprints after the joined scan, counting only a field's edges when
/// the joined text matched nothing. These tests hold it to the plain way (every field matched whole, at once).
/// </summary>
public sealed class FingerprintMatchingTests
{
    private const string Document = "CONFIDENTIAL - HR only. Employee: Frank Li, born 1987-04-12. Current salary: 98,500 USD. Proposed: 104,000 USD. IBAN DE89 3704 0044 0532 0130 00. The review board meets on the third Thursday of each quarter to agree the bands.";

    private static readonly FingerprintSet Fingerprints = FingerprintsOf(Document);
    private static readonly DataScanner Deferred = new();
    private static readonly DataScanner Plain = new() { DisableDeferredFingerprints = true };

    private static FingerprintSet FingerprintsOf(string text)
    {
        var set = new HashSet<ulong>();
        Fingerprinter.Add(text, set, 10_000);
        return FingerprintSet.Create(set);
    }

    private static Dictionary<string, JsonElement> Args(string json) => JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;

    private static string Describe(IEnumerable<Finding> findings) =>
        string.Join("\n", findings.Select(f => $"{f.Kind} {f.Location} {f.Start}+{f.Length} {f.Encoding} {f.Masked} {f.Confidence:0.###}"));

    [Theory]
    // A distinctive value at the end of a field whose neighbour starts with a letter: joined, the two merge into one
    // token that matches nothing, yet the field alone repeats the IBAN.
    [InlineData("""{"a":"we pay it to de89370400440532013000","b":"xyz and more words here"}""")]
    [InlineData("""{"a":"de89370400440532013000 is where it goes","b":"fine","c":"and the rest of a long enough field to have an inside"}""")]
    // The same at the start of a field after a neighbour ending with a digit.
    [InlineData("""{"a":"ref 7","b":"104,000 usd it is, proposed for the next review of the salary bands this year"}""")]
    public void AFieldMatch_LostInTheJoinedText_IsStillFound(string json)
    {
        var args = Args(json);
        var deferred = Deferred.ScanArguments(args, Fingerprints).Findings;
        Assert.Equal(Describe(Plain.ScanArguments(args, Fingerprints).Findings), Describe(deferred));
        Assert.Contains(deferred, f => f.Kind == FindingKinds.Fingerprint && !f.Location.StartsWith("joined(", StringComparison.Ordinal));
    }

    [Fact]
    public void RandomArgumentSets_GiveTheSameFindings_AsMatchingEveryFieldWhole()
    {
        var random = new Random(20261127);
        string[] words = ["the", "review", "salary", "frank", "li", "usd", "board", "quarter", "bands", "x", "7", "2025", "ok", "ci", "release", "notes"];
        string[] separators = [" ", ",", ".", "-", "/", ", ", "; ", "\n", ":", "", "", ""];
        var withFingerprint = 0;
        var withFieldFingerprint = 0;
        for (var n = 0; n < 4000; n++)
        {
            var fields = new List<string>();
            var count = random.Next(1, 6);
            for (var k = 0; k < count; k++)
            {
                var sb = new StringBuilder();
                var parts = random.Next(1, random.Next(2) == 0 ? 6 : 40);
                for (var p = 0; p < parts; p++)
                {
                    switch (random.Next(10))
                    {
                        case 0 or 1 or 2:
                            // A piece of the document, cut anywhere (inside numbers and words too), re-cased.
                            var start = random.Next(Document.Length);
                            var piece = Document.Substring(start, Math.Min(Document.Length - start, random.Next(1, 40)));
                            sb.Append(random.Next(3) == 0 ? piece.ToUpperInvariant() : piece);
                            break;
                        case 3:
                            sb.Append(random.Next(1_000_000).ToString(System.Globalization.CultureInfo.InvariantCulture));
                            break;
                        case 4:
                            sb.Append(Convert.ToBase64String(Encoding.UTF8.GetBytes(Document.Substring(random.Next(100), 40))));
                            break;
                        case 5 when random.Next(8) == 0:
                            sb.Append("ü\u200B"); // not plain: that field and the joined text are folded
                            break;
                        default:
                            sb.Append(words[random.Next(words.Length)]);
                            break;
                    }

                    sb.Append(separators[random.Next(separators.Length)]);
                }

                fields.Add(sb.ToString());
            }

            var json = JsonSerializer.Serialize(fields.Select((f, i) => (f, i)).ToDictionary(x => "f" + x.i, x => random.Next(6) == 0 ? (object)new[] { x.f } : x.f));
            var args = Args(json);
            var expected = Plain.ScanArguments(args, Fingerprints).Findings;
            var actual = Deferred.ScanArguments(args, Fingerprints).Findings;
            Assert.True(Describe(expected) == Describe(actual), $"arguments {json}\nexpected:\n{Describe(expected)}\nactual:\n{Describe(actual)}");
            withFingerprint += actual.Any(f => f.Kind == FindingKinds.Fingerprint) ? 1 : 0;
            withFieldFingerprint += actual.Any(f => f.Kind == FindingKinds.Fingerprint && f.Location.StartsWith("$.", StringComparison.Ordinal)) ? 1 : 0;
        }

        // Not vacuous: many sets repeat the document, many do not.
        Assert.InRange(withFingerprint, 400, 3600);
        Assert.InRange(withFieldFingerprint, 400, 3600);
    }
}
