using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Warden.Core.DataGuard;

namespace Warden.Core.Tests.DataGuard;

public sealed class DataScannerTests
{
    private static readonly DataScanner Scanner = new();

    private static Dictionary<string, JsonElement> Args(string json) => JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;

    private static List<Finding> Scan(string text) => Scanner.ScanText(text, "text").Findings;

    [Theory]
    [InlineData("ＡＫＩＡ", "AKIA")]
    [InlineData("A\u200BK\u200DI\uFEFFA", "AKIA")]
    [InlineData("\u0410\u041A\u0406\u0410", "AKIA")] // Cyrillic look-alikes
    [InlineData("A\U000E0041KIA", "AKIA")] // a Unicode tag character
    [InlineData("\U0001D400\U0001D40A", "AK")] // mathematical bold capitals
    [InlineData("ﬁle", "file")]
    [InlineData("plain ascii", "plain ascii")]
    public void Normalize_FoldsEvasions(string input, string expected) => Assert.Equal(expected, TextNormalizer.Normalize(input));

    [Fact]
    public void Normalize_PlainAscii_ReturnsSameInstance()
    {
        var s = "nothing to fold here";
        Assert.Same(s, TextNormalizer.Normalize(s));
    }

    [Theory]
    [InlineData("key AKIAEXAMPLEFAKE00042 here", "aws_access_key")]
    [InlineData("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "generic_secret")]
    [InlineData("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "private_key")]
    [InlineData("postgres://app:S3cretPassw0rd@db.internal:5432/app", "connection_string")]
    [InlineData("mail frank.li.home@example.org now", "email")]
    [InlineData("call +1-555-0142 today", "phone")]
    [InlineData("card 4111 1111 1111 1111 exp", "card_number")]
    [InlineData("IBAN DE89 3704 0044 0532 0130 00.", "iban")]
    [InlineData("ssn 219-09-9991", "us_ssn")]
    public void Scan_FindsKnownFormats(string text, string kind) => Assert.Contains(Scan(text), f => f.Kind == kind);

    [Theory]
    [InlineData("card 4111 1111 1111 1112")] // Luhn fails
    [InlineData("IBAN DE88 3704 0044 0532 0130 00")] // mod-97 fails
    [InlineData("ssn 666-12-3456 and 000-12-3456 and 123-00-4567")] // SSA never issues these
    [InlineData("commit 3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345 and id 550e8400-e29b-41d4-a716-446655440000")]
    [InlineData("password: ******** and api_key = ${API_KEY} and token: null")]
    [InlineData("Revenue grew 12.5% to 4,210,000 in Q3 2024; release 1.4.2 on 2025-03-15.")]
    public void Scan_HardNegatives_FindNothing(string text) => Assert.Empty(Scan(text));

    [Fact]
    public void Scan_EncodedAndNested_ReportsTheChain()
    {
        var inner = Convert.ToHexStringLower(Encoding.UTF8.GetBytes("AKIAEXAMPLEFAKE00042"));
        var outer = Convert.ToBase64String(Encoding.UTF8.GetBytes(inner));
        var f = Assert.Single(Scan("look: " + outer), x => x.Kind == "aws_access_key");
        Assert.Equal("base64>hex", f.Encoding);
        Assert.DoesNotContain("EXAMPLEFAKE", f.Masked, StringComparison.Ordinal);
    }

    [Fact]
    public void ScanArguments_ValueSplitAcrossFields_FoundJoined()
    {
        var report = Scanner.ScanArguments(Args("""{"a":"first AKIAEXAMP","b":"LEFAKE00042 end"}"""));
        var f = Assert.Single(report.Findings, x => x.Kind == "aws_access_key");
        Assert.Equal("joined($.a,$.b)", f.Location);
    }

    [Fact]
    public void ScanArguments_ReportsPaths()
    {
        var report = Scanner.ScanArguments(Args("""{"to":["x@corp.example"],"body":{"card":4111111111111111}}"""));
        Assert.Contains(report.Findings, f => f.Kind == "email" && f.Location == "$.to[0]");
        Assert.Contains(report.Findings, f => f.Kind == "card_number" && f.Location == "$.body.card");
    }

    [Fact]
    public void ScanArguments_HundredLevelsDeep_IsUnscannableNotACrash()
    {
        var json = new StringBuilder("{\"a\":");
        for (var i = 0; i < 100; i++)
        {
            json.Append("{\"n\":");
        }

        json.Append("\"x\"").Append('}', 100).Append('}');
        var doc = JsonDocument.Parse(json.ToString(), new JsonDocumentOptions { MaxDepth = 200 });
        var args = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        var report = Scanner.ScanArguments(args);
        Assert.True(report.Incomplete);
        Assert.Contains(report.Findings, f => f.Kind == FindingKinds.Unscannable);
    }

    [Fact]
    public void ScanArguments_OneMegabytePayload_ScannedWithinTheCap()
    {
        var big = new string('x', 1 << 20) + " AKIAEXAMPLEFAKE00042";
        var report = Scanner.ScanArguments(new Dictionary<string, JsonElement> { ["t"] = JsonSerializer.SerializeToElement(big) });
        // One more character than the cap: the tail is unscannable, and that alone is a finding (blocked by default).
        Assert.True(report.Incomplete);
        Assert.Contains(report.Findings, f => f.Kind == FindingKinds.Unscannable);
    }

    [Fact]
    public void ScanText_LargeResult_FindsValuesAcrossWindowSeams()
    {
        var scanner = new DataScanner(new DataScannerOptions { WindowChars = 1000 });
        var text = new string('.', 990) + " AKIAEXAMPLEFAKE00042 " + new string('.', 5000) + " x@corp.example";
        var findings = scanner.ScanText(text, "content[0]").Findings;
        Assert.Contains(findings, f => f.Kind == "aws_access_key" && f.Start == 991);
        Assert.Contains(findings, f => f.Kind == "email");
    }

    [Fact]
    public void ScanText_DecompressionBomb_StopsAtTheInflateCap()
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var zeros = new byte[1 << 20];
            Array.Fill(zeros, (byte)'a');
            for (var i = 0; i < 64; i++)
            {
                gz.Write(zeros); // 64 MB of text from a few kilobytes
            }
        }

        var bomb = Convert.ToBase64String(ms.ToArray());
        var report = new DataScanner(new DataScannerOptions { MaxInflateBytes = 1 << 20 }).ScanText("blob " + bomb, "content[0]");
        Assert.True(report.Incomplete);
        Assert.Contains(report.Findings, f => f.Kind == FindingKinds.Unscannable);
    }

    [Fact]
    public void Redact_ReplacesOnlyTheFindings()
    {
        const string text = "key AKIAEXAMPLEFAKE00042 for x@corp.example";
        var findings = Scan(text);
        Assert.Equal("key [REDACTED:aws_access_key] for [REDACTED:email]", DataScanner.Redact(text, findings));
    }

    [Fact]
    public void Redact_AfterFolding_MapsBackToTheOriginal()
    {
        const string text = "key ＡＫＩＡEXAMPLEFAKE00042 end";
        Assert.Equal("key [REDACTED:aws_access_key] end", DataScanner.Redact(text, Scan(text)));
    }

    [Fact]
    public void CustomPatternsAndKeywords_AreFindings()
    {
        var scanner = new DataScanner(new DataScannerOptions
        {
            Patterns = [new CustomPattern("codename", @"\bPROJECT-[A-Z]{4}\b", "confidential")],
            Keywords = [new KeywordList("marker", ["HR only", "confidential"])],
        });
        var findings = scanner.ScanText("CONFIDENTIAL - HR only: PROJECT-ORCA", "t").Findings;
        Assert.Contains(findings, f => f.Kind == "codename" && f.Label == "confidential" && f.Category == FindingCategory.Custom);
        Assert.Equal(2, findings.Count(f => f.Kind == "marker"));
        Assert.Empty(scanner.ScanText("nonconfidential", "t").Findings);
    }

    [Fact]
    public void Fingerprints_MatchAfterCaseWhitespaceAndEncodingChanges()
    {
        var set = new HashSet<ulong>();
        Fingerprinter.Add("Current salary: 98,500 USD. Proposed: 104,000 USD for Frank Li.", set, 1000);
        var encoded = Convert.ToBase64String(Encoding.UTF8.GetBytes("fyi frank's raise is to 104 000"));
        var report = Scanner.ScanArguments(Args($$"""{"text":"{{encoded}}"}"""), set);
        Assert.Contains(report.Findings, f => f.Kind == FindingKinds.Fingerprint);
        Assert.DoesNotContain(Scanner.ScanArguments(Args("""{"text":"the build is green again"}"""), set).Findings, f => f.Kind == FindingKinds.Fingerprint);
    }
}
