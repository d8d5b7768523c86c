using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Warden.Core.Approvals;

/// <summary>
/// What an approval binds to. Arguments are written as canonical JSON (object keys sorted by ordinal, no
/// whitespace, numbers exactly as sent), so the same call digests the same whatever its key order, and any change
/// of a value, a key or a number's spelling gives another digest.
/// </summary>
public static class ApprovalDigest
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The arguments as canonical JSON; <c>{}</c> when there are none.</summary>
    public static string CanonicalArguments(IReadOnlyDictionary<string, JsonElement>? arguments)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, Options))
        {
            w.WriteStartObject();
            if (arguments is not null)
            {
                foreach (var key in arguments.Keys.Order(StringComparer.Ordinal))
                {
                    w.WritePropertyName(key);
                    Write(w, arguments[key]);
                }
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The digest an approver binds to: server, tool, canonical arguments and policy version.</summary>
    public static string Digest(string server, string tool, string canonicalArguments, string policyVersion) =>
        Hash("warden-approval-v1", server, tool, canonicalArguments, policyVersion);

    /// <summary>The pattern approve-and-remember matches: server, tool and canonical arguments.</summary>
    public static string Pattern(string server, string tool, string canonicalArguments) =>
        Hash("warden-pattern-v1", server, tool, canonicalArguments, "");

    private static string Hash(string domain, string server, string tool, string arguments, string version)
    {
        // Length-prefixed fields: no choice of names can make two different calls hash alike.
        var text = string.Concat(domain, "\n", Field(server), Field(tool), Field(version), Field(arguments));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    private static string Field(string value) => value.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":" + value + "\n";

    private static void Write(Utf8JsonWriter w, JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                w.WriteStartObject();
                foreach (var p in e.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    w.WritePropertyName(p.Name);
                    Write(w, p.Value);
                }

                w.WriteEndObject();
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                foreach (var item in e.EnumerateArray())
                {
                    Write(w, item);
                }

                w.WriteEndArray();
                break;
            case JsonValueKind.Number:
                w.WriteRawValue(e.GetRawText(), skipInputValidation: true);
                break;
            case JsonValueKind.Undefined:
                w.WriteNullValue();
                break;
            default:
                e.WriteTo(w);
                break;
        }
    }
}
