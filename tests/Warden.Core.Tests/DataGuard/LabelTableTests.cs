using Warden.Core.DataGuard;

namespace Warden.Core.Tests.DataGuard;

public sealed class LabelTableTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private const string Document = "CONFIDENTIAL - HR only. Employee: Frank Li, born 1987-04-12. Current salary: 98,500 USD. Proposed: 104,000 USD. IBAN DE89 3704 0044 0532 0130 00.";

    [Fact]
    public void Fingerprints_OfAFixedText_AreTheStoredOnes()
    {
        // The store keeps these hashes for 24 hours across restarts and versions: a change to the tokenizer or the
        // shingle hash would make every stored fingerprint miss. These are the values the first release wrote.
        var set = new HashSet<ulong>();
        Fingerprinter.Add(Document, set, 1000);
        Assert.Equal([1247382178743345548UL, 1434943765036406810UL, 2151670101085100974UL, 3677789386363894006UL, 5006781777130889540UL, 7516156374142447566UL, 8710875276592297824UL, 8902926611987134628UL, 9093942557391889676UL, 9174787578944303223UL, 9500977089330301966UL, 10137223182463662948UL, 10188153864760892742UL, 11509387313818478494UL, 12729814790522287281UL, 12854519054039485537UL, 16147512378984741001UL, 18341995580385663180UL], set.Order());
    }

    [Fact]
    public void FingerprintSet_HoldsExactlyItsValues_AndUnionCaps()
    {
        ulong[] values = [0, 1, 2, 0x8000_0000_0000_0000UL, ulong.MaxValue, .. Enumerable.Range(3, 500).Select(i => (ulong)i * 0x9E37_79B9_7F4A_7C15UL)];
        var set = FingerprintSet.Create(values);
        Assert.Equal(values.Distinct().Count(), set.Count);
        Assert.All(values, v => Assert.Contains(v, set));
        Assert.DoesNotContain(3UL, set);
        Assert.Equal(values.Distinct().Order(), set.Order());

        Assert.Same(set, set.Union([1, 2]));
        var more = set.Union([7, 8, 9], max: set.Count + 2);
        Assert.Equal(set.Count + 2, more.Count);
        Assert.Empty(FingerprintSet.Empty);
        Assert.DoesNotContain(0UL, FingerprintSet.Empty);
    }

    [Fact]
    public void ApplyingARecord_TwiceOrFromAnotherProcess_GivesTheSameLabelsAndFingerprints()
    {
        var hashes = new HashSet<ulong>();
        Fingerprinter.Add(Document, hashes, 1000);
        var record = new DataLabelRecord("lbl-1", "reader", null, ["confidential"], [.. hashes], T0, T0.AddHours(24));
        var table = new LabelTable();
        table.Apply(record);
        table.Apply(record);

        Assert.Equal(["confidential"], table.LabelsOf("reader", "reader/any-session", T0.AddHours(1)));
        var set = table.FingerprintsOf("reader", "reader/any-session", T0.AddHours(1));
        Assert.NotNull(set);
        Assert.Equal(hashes.Count, set.Count);
        Assert.True(Fingerprinter.IsFinding(Fingerprinter.Match("the iban is de89 3704 0044 0532 0130 00", set)));
        Assert.Empty(table.LabelsOf("other", "other/1", T0.AddHours(1)));
    }

    [Fact]
    public void ARecordForOneSession_StaysInThatSession()
    {
        var table = new LabelTable();
        table.Apply(new DataLabelRecord("lbl-1", "reader", "reader/s1", ["confidential"], [42], T0, T0.AddHours(2)));
        Assert.Equal(["confidential"], table.LabelsOf("reader", "reader/s1", T0));
        Assert.Empty(table.LabelsOf("reader", "reader/s2", T0));
        Assert.Null(table.FingerprintsOf("reader", "reader/s2", T0));
    }

    [Fact]
    public void Prune_ForgetsOnlyWhatLapsed_AndLaterLabelsStillLand()
    {
        var table = new LabelTable();
        table.Apply(new DataLabelRecord("lbl-1", "a", null, ["old"], [1], T0, T0.AddHours(1)));
        table.Apply(new DataLabelRecord("lbl-2", "b", null, ["young"], [2], T0, T0.AddHours(3)));
        table.Prune(T0.AddHours(2));
        Assert.Empty(table.LabelsOf("a", "a/1", T0));
        Assert.Null(table.FingerprintsOf("a", "a/1", T0));
        Assert.Equal(["young"], table.LabelsOf("b", "b/1", T0.AddHours(2)));

        // A pruned holder is not reused: a label given afterwards is in force.
        table.Apply(new DataLabelRecord("lbl-3", "a", null, ["again"], [3], T0.AddHours(2), T0.AddHours(5)));
        Assert.Equal(["again"], table.LabelsOf("a", "a/1", T0.AddHours(2)));
    }
}
