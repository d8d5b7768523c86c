using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Warden.Core.Audit;

/// <summary>
/// Keyed digests and argument masking for the audit log. A digest is HMAC-SHA256 under a key only Warden's data
/// folder holds, so a short secret cannot be guessed from its digest, while an operator who knows a value can
/// still find it (<c>warden audit hash VALUE</c>).
/// </summary>
/// <remarks>
/// Masking is the placeholder the data-guard issue replaces: values under argument keys named in
/// <see cref="MaskedKeys"/> (case-insensitive, at any depth) and string values that look like secrets
/// (<see cref="LooksSecret"/>) are replaced by their digest before anything is stored. A string is digested over
/// its UTF-8 value; any other JSON value over its compact JSON text.
/// </remarks>
public sealed partial class AuditDigester
{
    /// <summary>The prefix of every digest.</summary>
    public const string Prefix = "hmac:";

    /// <summary>Argument keys masked by default.</summary>
    public static readonly IReadOnlyList<string> DefaultMaskedKeys = ["password", "passwd", "token", "secret", "api_key", "apikey", "authorization", "access_token", "refresh_token", "client_secret", "private_key"];

    private readonly byte[] _key;
    private readonly HashSet<string> _masked;

    /// <summary>Creates a digester over a key (at least 16 bytes) and the argument keys to mask.</summary>
    public AuditDigester(ReadOnlySpan<byte> key, IEnumerable<string>? maskedKeys = null)
    {
        if (key.Length < 16)
        {
            throw new ArgumentException("The audit key must be at least 16 bytes.", nameof(key));
        }

        _key = key.ToArray();
        _masked = new HashSet<string>(maskedKeys ?? DefaultMaskedKeys, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The argument keys masked.</summary>
    public IReadOnlyCollection<string> MaskedKeys => _masked;

    /// <summary>The keyed digest of bytes: <c>hmac:</c> and 64 hex digits.</summary>
    public string Digest(ReadOnlySpan<byte> data)
    {
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_key, data, mac);
        return Prefix + Convert.ToHexStringLower(mac);
    }

    /// <summary>The keyed digest of a string's UTF-8 bytes.</summary>
    public string Digest(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return Digest(Encoding.UTF8.GetBytes(value));
    }

    /// <summary>True for strings that look like credentials whatever key they sit under.</summary>
    public static bool LooksSecret(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        try
        {
            return value.Length >= 16 && SecretPattern().IsMatch(value);
        }
        catch (RegexMatchTimeoutException)
        {
            return true; // when in doubt, mask
        }
    }

    /// <summary>The arguments as compact JSON with masked values replaced by their digest; null when there are none.</summary>
    public string? MaskArguments(IReadOnlyDictionary<string, JsonElement>? arguments)
    {
        if (arguments is null)
        {
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var (key, value) in arguments)
            {
                writer.WritePropertyName(key);
                WriteValue(writer, value, _masked.Contains(key));
            }

            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private void WriteValue(Utf8JsonWriter writer, JsonElement value, bool mask)
    {
        if (mask)
        {
            writer.WriteStringValue(value.ValueKind == JsonValueKind.String ? Digest(value.GetString()!) : Digest(Encoding.UTF8.GetBytes(value.GetRawText())));
            return;
        }

        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var p in value.EnumerateObject())
                {
                    writer.WritePropertyName(p.Name);
                    WriteValue(writer, p.Value, _masked.Contains(p.Name));
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in value.EnumerateArray())
                {
                    WriteValue(writer, item, false);
                }

                writer.WriteEndArray();
                break;
            case JsonValueKind.String:
                var s = value.GetString()!;
                if (LooksSecret(s))
                {
                    writer.WriteStringValue(Digest(s));
                }
                else
                {
                    writer.WriteStringValue(s);
                }

                break;
            default:
                value.WriteTo(writer);
                break;
        }
    }

    // Obvious credential shapes: provider key prefixes (OpenAI/Anthropic sk-, GitHub, Slack, AWS access keys,
    // Google API keys), Warden's own tokens, JWTs, bearer/basic headers, PEM private keys, and key=value pairs
    // naming a secret. Deliberately narrow: the data guard issue brings real detection.
    [GeneratedRegex(
        @"(?:\b(?:sk|pk|rk)[-_](?:live[-_]|test[-_]|proj[-_]|ant[-_])?[A-Za-z0-9_\-]{12,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abprs]-[A-Za-z0-9\-]{10,}|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_\-]{30,}|\bwdn_[a-z]+_[A-Za-z0-9_\-]{16,}|\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.|\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY-----|(?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*\S{6,})",
        RegexOptions.CultureInvariant | RegexOptions.IgnoreCase,
        matchTimeoutMilliseconds: 100)]
    private static partial Regex SecretPattern();
}
