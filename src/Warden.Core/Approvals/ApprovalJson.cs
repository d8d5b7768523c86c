using System.Text.Json;
using System.Text.Json.Serialization;

namespace Warden.Core.Approvals;

/// <summary>The JSON form of approvals and grants, as stores keep them (snake_case, states by name).</summary>
public static class ApprovalJson
{
    /// <summary>Writes an approval.</summary>
    public static string Serialize(ApprovalRecord record) => JsonSerializer.Serialize(record, ApprovalJsonContext.Default.ApprovalRecord);

    /// <summary>Reads an approval.</summary>
    public static ApprovalRecord Deserialize(string json) =>
        JsonSerializer.Deserialize(json, ApprovalJsonContext.Default.ApprovalRecord) ?? throw new JsonException("an approval record is null");

    /// <summary>Writes a grant.</summary>
    public static string Serialize(RememberedGrant grant) => JsonSerializer.Serialize(grant, ApprovalJsonContext.Default.RememberedGrant);

    /// <summary>Reads a grant.</summary>
    public static RememberedGrant DeserializeGrant(string json) =>
        JsonSerializer.Deserialize(json, ApprovalJsonContext.Default.RememberedGrant) ?? throw new JsonException("a grant record is null");
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ApprovalRecord))]
[JsonSerializable(typeof(RememberedGrant))]
internal sealed partial class ApprovalJsonContext : JsonSerializerContext;
