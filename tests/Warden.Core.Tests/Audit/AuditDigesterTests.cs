using System.Text.Json;
using Warden.Core.Audit;

namespace Warden.Core.Tests.Audit;

public sealed class AuditDigesterTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    private static Dictionary<string, JsonElement> Args(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;

    [Fact]
    public void Digest_IsKeyedAndStable()
    {
        var a = new AuditDigester(Key);
        var b = new AuditDigester(Key.Reverse().ToArray());
        Assert.StartsWith("hmac:", a.Digest("1234"));
        Assert.Equal(a.Digest("1234"), new AuditDigester(Key).Digest("1234"));
        Assert.False(a.Digest("1234") == b.Digest("1234"));
    }

    [Fact]
    public void MaskArguments_MasksListedKeysAtAnyDepthCaseInsensitive()
    {
        var d = new AuditDigester(Key, ["password", "api_key"]);
        var masked = d.MaskArguments(Args("""{"user":"bob","Password":"hunter2","nested":{"API_KEY":42,"keep":"x"},"list":[{"password":"p2"}]}"""))!;
        Assert.DoesNotContain("hunter2", masked);
        Assert.DoesNotContain("p2\"", masked);
        Assert.Contains("\"user\":\"bob\"", masked);
        Assert.Contains("\"keep\":\"x\"", masked);
        Assert.Contains(d.Digest("hunter2"), masked);
        Assert.Contains(d.Digest("42"), masked);
    }

    [Theory]
    [InlineData("sk-live-CANARY0123456789abcdef")]
    [InlineData("ghp_abcdefghijklmnopqrstuvwxyz0123456789")]
    [InlineData("AKIAEXAMPLEFAKE00042")]
    [InlineData("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc")]
    [InlineData("wdn_agent_0123456789abcdefghij")]
    [InlineData("-----BEGIN RSA PRIVATE KEY----- MIIE")]
    [InlineData("note: password=CorrectHorse")]
    public void MaskArguments_MasksSecretLookingValuesUnderAnyKey(string secret)
    {
        var d = new AuditDigester(Key);
        var masked = d.MaskArguments(new Dictionary<string, JsonElement> { ["note"] = JsonSerializer.SerializeToElement(secret) })!;
        Assert.DoesNotContain(secret, masked);
        Assert.Contains(d.Digest(secret), masked);
    }

    [Theory]
    [InlineData("mail-001")]
    [InlineData("Quarterly report for the team")]
    [InlineData("https://corp.example/docs/42")]
    public void MaskArguments_KeepsOrdinaryValues(string value)
    {
        var masked = new AuditDigester(Key).MaskArguments(new Dictionary<string, JsonElement> { ["v"] = JsonSerializer.SerializeToElement(value) })!;
        Assert.Contains(JsonSerializer.Serialize(value), masked);
    }
}
