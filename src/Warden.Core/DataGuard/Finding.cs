namespace Warden.Core.DataGuard;

/// <summary>What kind of data a finding is: a credential, personal data, a policy's own pattern, or a limit hit.</summary>
public enum FindingCategory
{
    /// <summary>Credentials: keys, tokens, private keys, connection strings, high-entropy assignments.</summary>
    Secret,

    /// <summary>Personal data: e-mail addresses, phone numbers, card numbers, IBANs, SSNs.</summary>
    Personal,

    /// <summary>A policy's custom pattern or keyword list.</summary>
    Custom,

    /// <summary>A distinctive value from a labelled result reappearing in an outbound call.</summary>
    Fingerprint,

    /// <summary>The data could not be scanned fully (too large, too deep, a decompression bomb): fail closed.</summary>
    Limit,
}

/// <summary>
/// One thing the data guard saw. The value itself is never kept: only a masked preview safe for audit records
/// and approval screens.
/// </summary>
/// <param name="Kind">The detector's kind, for example <c>aws_access_key</c>, <c>email</c>, or a custom pattern's name.</param>
/// <param name="Category">Secret, personal, custom, fingerprint or limit.</param>
/// <param name="Location">Where: an argument path (<c>$.text</c>, <c>$.to[0]</c>), <c>joined($.a,$.b)</c>, or a result block (<c>content[0]</c>).</param>
/// <param name="Confidence">How sure the detector is, 0 to 1.</param>
/// <param name="Masked">A masked preview of the value (<c>AKIA…0042</c>).</param>
/// <param name="Encoding">The decoding chain that revealed it (<c>base64</c>, <c>url&gt;base64</c>), or null when it was in plain sight.</param>
public sealed record Finding(string Kind, FindingCategory Category, string Location, double Confidence, string Masked, string? Encoding = null)
{
    /// <summary>Start of the matched text in the original value (field), for redaction; -1 when it cannot be pinned down.</summary>
    public int Start { get; init; } = -1;

    /// <summary>Length of the matched text in the original value.</summary>
    public int Length { get; init; }

    /// <summary>The label a finding gives the agent when the action is <c>label</c>: a custom kind's label, else the category.</summary>
    public string? Label { get; init; }

    /// <summary>A short human form: <c>aws_access_key at $.text (base64, 0.95): AKIA…0042</c>.</summary>
    public override string ToString() =>
        $"{Kind} at {Location}{(Encoding is null ? "" : $" ({Encoding})")} {Confidence:0.00}: {Masked}";

    /// <summary>Masks a value: keeps a little of each end so a human can recognise it, never enough to use it.</summary>
    public static string Mask(ReadOnlySpan<char> value)
    {
        if (value.Length <= 4)
        {
            return new string('*', value.Length);
        }

        var keep = value.Length >= 16 ? 4 : value.Length >= 8 ? 2 : 1;
        return string.Concat(value[..keep], "…", value[^keep..], $" ({value.Length} chars)");
    }

    /// <summary>The category's name as written in policy.</summary>
    public static string CategoryName(FindingCategory c) => c switch
    {
        FindingCategory.Secret => "secret",
        FindingCategory.Personal => "personal",
        FindingCategory.Custom => "custom",
        FindingCategory.Fingerprint => "fingerprint",
        _ => "limit",
    };
}

/// <summary>The built-in detector kinds.</summary>
public static class FindingKinds
{
    /// <summary>Secret kinds.</summary>
    public static readonly IReadOnlyList<string> Secrets =
    [
        "aws_access_key", "github_token", "gitlab_token", "slack_token", "slack_webhook", "stripe_key", "google_api_key",
        "private_key", "jwt", "connection_string", "generic_secret",
    ];

    /// <summary>Personal-data kinds.</summary>
    public static readonly IReadOnlyList<string> Personal = ["email", "phone", "card_number", "iban", "us_ssn"];

    /// <summary>The kind reported when a labelled result's value reappears in an outbound call.</summary>
    public const string Fingerprint = "fingerprint";

    /// <summary>The kind reported when data exceeds the scanner's caps.</summary>
    public const string Unscannable = "unscannable";

    /// <summary>The category of a built-in kind, or null when it is not built in.</summary>
    public static FindingCategory? CategoryOf(string kind) =>
        Secrets.Contains(kind) ? FindingCategory.Secret
        : Personal.Contains(kind) ? FindingCategory.Personal
        : kind == Fingerprint ? FindingCategory.Fingerprint
        : kind == Unscannable ? FindingCategory.Limit
        : null;
}
