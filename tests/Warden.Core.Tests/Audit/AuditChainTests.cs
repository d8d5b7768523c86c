using System.Text;
using System.Text.Json;
using Warden.Core.Audit;

namespace Warden.Core.Tests.Audit;

public sealed class AuditChainTests
{
    internal static AuditEvent Raw(int i) => new()
    {
        Time = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(i * 12_345L),
        Kind = (i % 3) switch { 0 => AuditKinds.Decision, 1 => AuditKinds.CallForwarded, _ => AuditKinds.CallCompleted },
        Actor = "agent:a" + (i % 5),
        Agent = "a" + (i % 5),
        Session = "s" + (i % 7),
        Call = "c" + (i / 3),
        Server = "workplace",
        Tool = "delete_mail",
        Effect = i % 3 == 0 ? "allow" : null,
        Rule = i % 3 == 0 ? "reads-are-fine" : null,
        PolicyVersion = "v1",
        Arguments = i % 3 == 0 ? "{\"ids\":[\"mail-" + i + "\"]}" : null,
        DurationMicros = i % 3 == 2 ? i * 10L : null,
        Detail = i % 11 == 0 ? "line\nbreak \"quoted\" ü \u0001" : null,
    };

    /// <summary>Builds a chain the way a store does.</summary>
    internal static List<AuditEvent> Chain(int n)
    {
        var list = new List<AuditEvent>(n);
        var prev = AuditCanonical.GenesisHash.ToArray();
        for (var i = 1; i <= n; i++)
        {
            var hash = AuditCanonical.ComputeHash(Raw(i), i, prev);
            list.Add(Raw(i) with { Seq = i, PrevHash = prev, Hash = hash });
            prev = hash;
        }

        return list;
    }

    internal static AuditHead Head(List<AuditEvent> chain) => new(chain[^1].Seq, chain[^1].Hash);

    [Fact]
    public void Encode_IsSortedCompactJsonWithoutNulls()
    {
        var e = new AuditEvent { Seq = 7, Time = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(2)), Kind = "decision", Actor = "agent:x", Tool = "t\"\n\u0001é", DurationMicros = 12 };
        var text = Encoding.UTF8.GetString(AuditCanonical.Encode(e));
        Assert.Equal(
            "{\"actor\":\"agent:x\",\"dur_us\":12,\"kind\":\"decision\",\"prev\":\"" + new string('0', 64) + "\",\"seq\":7,\"time\":\"2026-01-02T01:04:05.0000000Z\",\"tool\":\"t\\\"\\n\\u0001é\",\"v\":1}",
            text);
        using var doc = JsonDocument.Parse(text); // valid JSON
        var keys = doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
    }

    [Fact]
    public void ComputeHash_DependsOnEveryFieldSeqAndPrev()
    {
        var e = Raw(3);
        var h = AuditCanonical.ComputeHash(e, 3, AuditCanonical.GenesisHash.Span);
        Assert.Equal(h, AuditCanonical.ComputeHash(e with { }, 3, AuditCanonical.GenesisHash.Span));
        Assert.NotEqual(h, AuditCanonical.ComputeHash(e, 4, AuditCanonical.GenesisHash.Span));
        Assert.NotEqual(h, AuditCanonical.ComputeHash(e, 3, new byte[32].Select(_ => (byte)1).ToArray()));
        Assert.NotEqual(h, AuditCanonical.ComputeHash(e with { Detail = "x" }, 3, AuditCanonical.GenesisHash.Span));
        Assert.NotEqual(h, AuditCanonical.ComputeHash(e with { Time = e.Time.AddTicks(1) }, 3, AuditCanonical.GenesisHash.Span));
        Assert.NotEqual(h, AuditCanonical.ComputeHash(e with { Agent = null }, 3, AuditCanonical.GenesisHash.Span));
        // An absent field and an empty one differ.
        Assert.NotEqual(AuditCanonical.ComputeHash(e with { Rule = null }, 3, AuditCanonical.GenesisHash.Span), AuditCanonical.ComputeHash(e with { Rule = "" }, 3, AuditCanonical.GenesisHash.Span));
    }

    [Fact]
    public void Verify_IntactChains_NoFalsePositives()
    {
        foreach (var n in new[] { 0, 1, 2, 65, 1000 })
        {
            var chain = Chain(n);
            var result = AuditVerifier.Verify(chain, n == 0 ? AuditHead.Empty : Head(chain));
            Assert.True(result.Ok, result.Message);
            Assert.Equal(n, result.Verified);
        }
    }

    [Fact]
    public void Verify_PartialChain_FromAnchor()
    {
        var chain = Chain(100);
        var result = AuditVerifier.Verify(chain.Skip(40), Head(chain), new AuditHead(40, chain[39].Hash));
        Assert.True(result.Ok, result.Message);
        Assert.Equal(60, result.Verified);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(500)]
    [InlineData(1000)]
    public void Verify_EditedRecord_NamesItAsEdited(int seq)
    {
        var chain = Chain(1000);
        chain[seq - 1] = chain[seq - 1] with { Detail = "rewritten" };
        Assert.Bad(AuditVerifier.Verify(chain, Head(chain)), AuditDamage.Edited, seq);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(500)]
    [InlineData(999)]
    public void Verify_EditedRecordWithRecomputedHash_NamesItAsEdited(int seq)
    {
        var chain = Chain(1000);
        var forged = chain[seq - 1] with { Effect = "deny" };
        chain[seq - 1] = forged with { Hash = AuditCanonical.ComputeHash(forged, seq, forged.PrevHash.Span) };
        Assert.Bad(AuditVerifier.Verify(chain, Head(chain)), AuditDamage.Edited, seq);
    }

    [Fact]
    public void Verify_EditedLastRecordWithRecomputedHash_CaughtByHead()
    {
        var chain = Chain(1000);
        var head = Head(chain);
        var forged = chain[^1] with { Effect = "deny" };
        chain[^1] = forged with { Hash = AuditCanonical.ComputeHash(forged, 1000, forged.PrevHash.Span) };
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Edited, 1000);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(500)]
    public void Verify_DeletedRecord_Gap(int seq)
    {
        var chain = Chain(1000);
        var head = Head(chain);
        chain.RemoveAt(seq - 1);
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Deleted, seq);
    }

    [Fact]
    public void Verify_DeletedRecordsRenumbered_Deleted()
    {
        var chain = Chain(1000);
        var head = Head(chain);
        chain.RemoveRange(499, 3);
        for (var i = 499; i < chain.Count; i++)
        {
            chain[i] = chain[i] with { Seq = chain[i].Seq - 3 };
        }

        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Deleted, 500);
    }

    [Fact]
    public void Verify_InsertedRecordRenumbered_Inserted()
    {
        var chain = Chain(1000);
        var head = Head(chain);
        for (var i = 499; i < chain.Count; i++)
        {
            chain[i] = chain[i] with { Seq = chain[i].Seq + 1 };
        }

        chain.Insert(499, Raw(7) with { Seq = 500, PrevHash = chain[498].Hash, Hash = new byte[32] });
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Inserted, 500);
    }

    [Fact]
    public void Verify_InsertedWellFormedRecordRenumbered_Inserted()
    {
        var chain = Chain(1000);
        var head = Head(chain);
        for (var i = 499; i < chain.Count; i++)
        {
            chain[i] = chain[i] with { Seq = chain[i].Seq + 1 };
        }

        var forged = Raw(7) with { Seq = 500, PrevHash = chain[498].Hash };
        chain.Insert(499, forged with { Hash = AuditCanonical.ComputeHash(forged, 500, forged.PrevHash.Span) });
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Inserted, 500);
    }

    [Fact]
    public void Verify_AppendedRecordPastHead_Inserted()
    {
        var chain = Chain(1000);
        var head = Head(chain);
        var forged = Raw(7) with { Seq = 1001, PrevHash = chain[^1].Hash };
        chain.Add(forged with { Hash = AuditCanonical.ComputeHash(forged, 1001, forged.PrevHash.Span) });
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Inserted, 1001);
    }

    [Fact]
    public void Verify_DuplicateLine_Inserted()
    {
        var chain = Chain(100);
        var head = Head(chain);
        chain.Insert(50, chain[49]);
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Inserted, 50);
    }

    [Fact]
    public void Verify_SwappedSeqs_Reordered()
    {
        var chain = Chain(1000);
        var head = Head(chain);
        (chain[499], chain[500]) = (chain[500] with { Seq = 500 }, chain[499] with { Seq = 501 });
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Reordered, 500);
    }

    [Fact]
    public void Verify_SwappedLines_Reordered()
    {
        var chain = Chain(1000);
        var head = Head(chain);
        (chain[499], chain[500]) = (chain[500], chain[499]);
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Reordered, 500);
    }

    [Fact]
    public void Verify_Truncated_NeedsHead()
    {
        var chain = Chain(1000);
        var head = Head(chain);
        chain.RemoveRange(990, 10);
        Assert.Bad(AuditVerifier.Verify(chain, head), AuditDamage.Truncated, 991);
        Assert.True(AuditVerifier.Verify(chain).Ok); // without the head, truncation is invisible: documented
    }

    [Fact]
    public void Verify_RandomSingleTamper_AlwaysCaughtAtTheRightRecord()
    {
        var rng = new Random(42);
        for (var round = 0; round < 200; round++)
        {
            var chain = Chain(300);
            var head = Head(chain);
            var at = rng.Next(1, 299);
            var kind = (AuditDamage)rng.Next(1, 6);
            switch (kind)
            {
                case AuditDamage.Edited:
                    chain[at - 1] = chain[at - 1] with { Actor = "x" };
                    break;
                case AuditDamage.Deleted:
                    chain.RemoveAt(at - 1);
                    break;
                case AuditDamage.Inserted:
                    chain.Insert(at - 1, Raw(at) with { Seq = at, PrevHash = chain[at - 1].PrevHash, Hash = chain[at - 1].Hash, Detail = "forged" });
                    for (var i = at; i < chain.Count; i++)
                    {
                        chain[i] = chain[i] with { Seq = chain[i].Seq + 1 };
                    }

                    break;
                case AuditDamage.Reordered:
                    (chain[at - 1], chain[at]) = (chain[at] with { Seq = at }, chain[at - 1] with { Seq = at + 1 });
                    break;
                case AuditDamage.Truncated:
                    at = 300 - rng.Next(0, 5);
                    chain.RemoveRange(at - 1, chain.Count - at + 1);
                    break;
            }

            Assert.Bad(AuditVerifier.Verify(chain, head), kind, at);
        }
    }
}
